#!/usr/bin/env bash
# Builds the local control plane's binaries from the Go module proxy into $RAYDAR_LOCAL/bin, at the
# versions pinned in tools/versions.env, and copies the files it needs from those modules (KubeRay
# CRDs, RBAC and sample; kwok's stages) into $RAYDAR_LOCAL/share. A piece whose stamp matches is skipped.
#   kube      one multi-call binary (deploy/local/go/kube): kube-apiserver, kube-controller-manager,
#             kube-scheduler, kubectl (symlinks)
#   etcd      deploy/local/go/etcd, upstream etcdmain
#   kwok      sigs.k8s.io/kwok/cmd/kwok
#   kuberay   github.com/ray-project/kuberay/ray-operator -> bin/ray-operator
#   prometheus  github.com/prometheus/prometheus/cmd/prometheus, Kubernetes service discovery only
#   ray       a Python venv with ray[default] from PyPI ($RAYDAR_LOCAL/ray), run by ray/heads.py
# Usage: build.sh [kube|etcd|kwok|kuberay|prometheus|share|ray ...]   (default: all)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v go >/dev/null || die "go is not on PATH (Go 1.26 or newer is needed)"
for v in K8S_VERSION ETCD_VERSION KWOK_VERSION KUBERAY_VERSION PROMETHEUS_VERSION PROMETHEUS_OPERATOR_VERSION JAEGER_VERSION; do
  [[ -n "${!v:-}" ]] || die "$v is empty in tools/versions.env"
done
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false}"
mkdir -p "$BIN/.stamps" "$SHARE"
# One build at a time: .ci/run starts one in the background while Rust compiles, and `make
# controlplane` then waits for it here and finds everything up to date.
exec 9>"$BIN/.build.lock"
if ! flock -n 9; then
  log "another build.sh is running; waiting for it"
  flock 9
fi
GO_VERSION="$(go env GOVERSION)"

hash_files() { cat "$@" | sha256sum | cut -c1-16; }
# fresh <name> <key> <files...>: true when the stamp says this exact build is already there.
fresh() {
  local name="$1" key="$2"; shift 2
  local f; for f in "$@"; do [[ -e "$f" ]] || return 1; done
  [[ -f "$BIN/.stamps/$name" && "$(cat "$BIN/.stamps/$name")" == "$key" ]]
}
stamp() { printf '%s' "$2" > "$BIN/.stamps/$1"; }
module_dir() {
  local dir
  dir="$(cd / && GOWORK=off go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [[ -n "$dir" && -d "$dir" ]] || die "could not download $1 from the Go module proxy"
  printf '%s' "$dir"
}

build_kube() {
  local dir="$LOCAL_DIR/go/kube"
  if ! grep -Eq "^(require |[[:space:]]+)k8s.io/kubernetes $K8S_VERSION\$" "$dir/go.mod"; then
    log "kube: go.mod does not match K8S_VERSION=$K8S_VERSION; running pin.sh kube (commit the result)"
    "$LOCAL_DIR/pin.sh" kube
  fi
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  local key="$K8S_VERSION $GO_VERSION $(hash_files "$dir/go.mod" "$dir/go.sum" "$dir/main.go") $ld"
  if fresh kube "$key" "$BIN/kube"; then log "kube $K8S_VERSION: up to date"; else
    log "kube $K8S_VERSION: building (apiserver+controller-manager+scheduler+kubectl; long when cold)"
    local t; t=$(now)
    (cd "$dir" && go build -trimpath -ldflags "$ld" -o "$BIN/kube.new" .)
    mv -f "$BIN/kube.new" "$BIN/kube"
    stamp kube "$key"
    log "kube: built in $(since "$t")"
  fi
  for p in kube-apiserver kube-controller-manager kube-scheduler kubectl; do ln -sfn kube "$BIN/$p"; done
}

build_etcd() {
  local dir="$LOCAL_DIR/go/etcd"
  if ! grep -Eq "^(require |[[:space:]]+)go.etcd.io/etcd/server/v3 $ETCD_VERSION\$" "$dir/go.mod"; then
    log "etcd: go.mod does not match ETCD_VERSION=$ETCD_VERSION; running pin.sh etcd (commit the result)"
    "$LOCAL_DIR/pin.sh" etcd
  fi
  local key="$ETCD_VERSION $GO_VERSION $(hash_files "$dir/go.mod" "$dir/go.sum" "$dir/main.go")"
  if fresh etcd "$key" "$BIN/etcd"; then log "etcd $ETCD_VERSION: up to date"; return; fi
  log "etcd $ETCD_VERSION: building"
  local t; t=$(now)
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.new" .)
  mv -f "$BIN/etcd.new" "$BIN/etcd"
  stamp etcd "$key"
  log "etcd: built in $(since "$t")"
}

# Jaeger v2, the OTLP receiver the tracing test sends to and reads traces back from (its query API).
build_jaeger() {
  local dir="$LOCAL_DIR/go/jaeger"
  if ! grep -Eq "^[[:space:]]+github.com/jaegertracing/jaeger $JAEGER_VERSION( |\$)" "$dir/go.mod" 2>/dev/null; then
    log "jaeger: go.mod does not match JAEGER_VERSION=$JAEGER_VERSION; running pin.sh jaeger (commit the result)"
    "$LOCAL_DIR/pin.sh" jaeger
  fi
  local key="$JAEGER_VERSION $GO_VERSION $(hash_files "$dir/go.mod" "$dir/go.sum")"
  if fresh jaeger "$key" "$BIN/jaeger"; then log "jaeger $JAEGER_VERSION: up to date"; return; fi
  log "jaeger $JAEGER_VERSION: building"
  local t; t=$(now)
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/jaeger.new" github.com/jaegertracing/jaeger/cmd/jaeger)
  mv -f "$BIN/jaeger.new" "$BIN/jaeger"
  stamp jaeger "$key"
  log "jaeger: built in $(since "$t")"
}

# go_install <stamp-name> <binary> <package@version> <ldflags> [build tags]: `go install` outside any
# module, so the tool's own go.mod/go.sum (checked against the checksum database) pin its dependencies.
go_install() {
  local name="$1" binary="$2" pkg="$3" ld="$4" tags="${5:-}"
  local key="$pkg $GO_VERSION $ld"
  [[ -z "$tags" ]] || key+=" tags=$tags"
  [[ -z "${CGO_ENABLED:-}" ]] || key+=" cgo=$CGO_ENABLED"
  if fresh "$name" "$key" "$BIN/$binary"; then log "$name ${pkg#*@}: up to date"; return; fi
  log "$name ${pkg#*@}: building $pkg"
  local t; t=$(now)
  (cd "$RAYDAR_LOCAL" && GOBIN="$BIN" go install -trimpath -tags "$tags" -ldflags "$ld" "$pkg")
  stamp "$name" "$key"
  log "$name: built in $(since "$t")"
}

build_kwok() {
  go_install kwok kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${K8S_VERSION#v}"
}

build_kuberay() {
  go_install kuberay ray-operator "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION" "-s -w"
}

# Real Prometheus, scraping the dcgm-exporter pods it finds through the apiserver (up.sh). Its go.mod
# has no replace/exclude lines, so `go install pkg@version` works. Build tags as upstream's plugins/
# defines them: remove_all_sd drops the ~25 service-discovery plugins (AWS, Azure, GCE, Consul...)
# and their SDKs, enable_kubernetes_sd keeps the one we use (file and http SD are always in); netgo
# as upstream's release builds. No builtinassets: the web UI's files are not in the Go module (they
# come from an npm build), so /graph has no page, and the HTTP API raydar uses is all there.
build_prometheus() {
  # Module v0.MNN.P is Prometheus M.NN.P (v0.316.0 -> 3.16.0): what `prometheus --version` and
  # /api/v1/status/buildinfo report.
  local v="${PROMETHEUS_VERSION#v0.}"
  local mm="${v%%.*}"
  local release="$((10#$mm / 100)).$((10#$mm % 100)).${v#*.}"
  # CGO_ENABLED=0: a static binary, and no C compiler needed.
  CGO_ENABLED=0 go_install prometheus prometheus \
    "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
    "-s -w -X github.com/prometheus/common/version.Version=$release" \
    "netgo,remove_all_sd,enable_kubernetes_sd"
}

# Files the scripts use, copied from the same pinned modules.
build_share() {
  local key="v4 kuberay=$KUBERAY_VERSION kwok=$KWOK_VERSION stages=$(cksum < "$LOCAL_DIR/kwok-stages.yaml") prometheus-operator=$PROMETHEUS_OPERATOR_VERSION"
  local servicemonitors="$SHARE/prometheus-operator/crds/monitoring.coreos.com_servicemonitors.yaml"
  if fresh share "$key" "$SHARE/kuberay/crds/ray.io_rayclusters.yaml" "$SHARE/kwok/stages.yaml" "$servicemonitors"; then
    log "share (CRDs, RBAC, sample, kwok stages): up to date"; return
  fi
  local ray kwok promop
  ray="$(module_dir "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION")"
  kwok="$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")"
  promop="$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")"
  rm -rf "$SHARE/kuberay" "$SHARE/kwok" "$SHARE/prometheus-operator"
  mkdir -p "$SHARE/kuberay/crds" "$SHARE/kuberay/rbac" "$SHARE/kuberay/samples" "$SHARE/kwok/crds" \
    "$SHARE/prometheus-operator/crds"
  cp "$promop/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml" "$servicemonitors"
  cp "$ray"/config/crd/bases/ray.io_{rayclusters,rayjobs,rayservices}.yaml "$SHARE/kuberay/crds/"
  cp "$ray"/config/rbac/{role,role_binding,service_account}.yaml "$SHARE/kuberay/rbac/"
  cat > "$SHARE/kuberay/rbac/kustomization.yaml" <<'YAML'
# KubeRay's own operator RBAC (config/rbac of the pinned ray-operator module), in namespace ray-system.
namespace: ray-system
resources: [role.yaml, role_binding.yaml, service_account.yaml]
YAML
  cp "$ray"/config/samples/ray-cluster.sample.yaml "$SHARE/kuberay/samples/"
  # kwok's default stages, as kwokctl assembles them: node init + heartbeat with lease; pod ready/complete/delete;
  # then raydar's own (kwok-stages.yaml), whose pods pod-ready leaves alone.
  local s first=1
  for s in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    ((first)) || echo '---'
    first=0
    if [[ $s == pod/fast/pod-ready ]]; then
      # The first matchExpressions is the stage's selector.
      sed '0,/matchExpressions:/s//matchExpressions:\n    - key: '"'"'.metadata.annotations["test.raydar.local\/stage"]'"'"'\n      operator: '"'"'DoesNotExist'"'"'/' \
        "$kwok/kustomize/stage/$s.yaml"
    else
      cat "$kwok/kustomize/stage/$s.yaml"
    fi
  done > "$SHARE/kwok/stages.yaml"
  echo '---' >> "$SHARE/kwok/stages.yaml"
  cat "$LOCAL_DIR/kwok-stages.yaml" >> "$SHARE/kwok/stages.yaml"
  # kwok's Logs/ClusterLogs CRDs: `kubectl logs` of a fake pod is served from a file they name.
  cp "$kwok"/kustomize/crd/bases/kwok.x-k8s.io_{logs,clusterlogs}.yaml "$SHARE/kwok/crds/"
  chmod -R u+w "$SHARE"
  stamp share "$key"
  log "share: copied KubeRay $KUBERAY_VERSION CRDs/RBAC/sample, kwok $KWOK_VERSION stages, the ServiceMonitor CRD"
}

# Real Ray for the head pods (deploy/local/ray/heads.py), every package pinned by ray/requirements.txt.
build_ray() {
  local req="$LOCAL_DIR/ray/requirements.txt"
  grep -qx "ray\[default\]==$RAY_VERSION" "$req" || die "$req does not pin ray[default]==$RAY_VERSION (tools/versions.env)"
  command -v python3 >/dev/null || die "python3 is not on PATH (3.10 or newer is needed for Ray $RAY_VERSION)"
  local key="$RAY_VERSION $(python3 --version 2>&1) $(hash_files "$req")"
  if fresh ray "$key" "$RAYDAR_LOCAL/ray/bin/ray"; then log "ray $RAY_VERSION: up to date"; return; fi
  log "ray $RAY_VERSION: installing ray[default] from PyPI into $RAYDAR_LOCAL/ray"
  local t; t=$(now)
  if ! python3 -m venv --clear "$RAYDAR_LOCAL/ray" >/dev/null 2>&1; then
    log "python3 -m venv failed: installing Debian's python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv --clear "$RAYDAR_LOCAL/ray"
  fi
  "$RAYDAR_LOCAL/ray/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
  stamp ray "$key"
  log "ray: installed in $(since "$t")"
}

T0=$(now)
parts=("$@"); ((${#parts[@]})) || parts=(share etcd kwok kuberay prometheus jaeger kube ray)
for part in "${parts[@]}"; do
  case "$part" in
    kube|etcd|kwok|kuberay|prometheus|jaeger|share|ray) "build_$part" ;;
    *) die "unknown part '$part' (kube|etcd|kwok|kuberay|prometheus|jaeger|share|ray)" ;;
  esac
done
log "build done in $(since "$T0"); binaries in $BIN"

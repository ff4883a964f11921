#!/usr/bin/env bash
# Starts the local control plane in the background and waits until it is ready:
#   etcd -> kube-apiserver (RBAC, secure port) -> kube-controller-manager, kube-scheduler,
#   kwok (fake nodes from deploy/local/nodes.yaml) and the KubeRay operator (CRDs applied first),
#   and, as root, ray-heads (ray/heads.py): a real Ray head at the IP of every running head pod, and
#   dcgm-exporter (ray/dcgm.py): a STAND-IN for NVIDIA's dcgm-exporter at the IP of each exporter pod
#   of the GPU nodes (dcgm-exporter.yaml), since this machine has no GPU: the one simulated part;
#   and after it a real Prometheus scraping those exporters (found through the apiserver) at $PROMETHEUS_URL.
# Idempotent: a second call while everything runs only checks readiness. Binds to 127.0.0.1 only.
# State (etcd data, certificates, logs, pids) is under $RAYDAR_LOCAL/state; down.sh removes it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

T0=$(now)
for b in etcd kube kube-apiserver kube-controller-manager kube-scheduler kubectl kwok ray-operator prometheus; do
  [[ -x "$BIN/$b" ]] || die "$BIN/$b is missing: run deploy/local/build.sh first"
done
[[ -f "$SHARE/kuberay/crds/ray.io_rayclusters.yaml" && -f "$SHARE/kwok/stages.yaml" ]] \
  || die "$SHARE is incomplete: run deploy/local/build.sh first"
command -v curl >/dev/null || die "curl is needed"
if ! command -v openssl >/dev/null; then
  log "openssl missing: installing it with apt-get"
  apt-get install -y openssl >/dev/null || die "openssl is needed (apt-get install -y openssl failed)"
fi
mkdir -p "$PKI" "$LOGS" "$PIDS" "$STATE/kubeconfigs"
KCFG="$STATE/kubeconfigs"
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" --request-timeout=20s "$@"; }

# ---------------------------------------------------------------- processes
pid_of() { [[ -f "$PIDS/$1.pid" ]] && cat "$PIDS/$1.pid"; }
running() {
  local pid; pid="$(pid_of "$1" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -qaF -- "$RAYDAR_LOCAL/" "/proc/$pid/cmdline" 2>/dev/null
}
STARTED=()
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# start <name> <ports> <command...>: run it detached (own session, survives this shell), log to
# $LOGS/<name>.log; refuse when one of its (comma-separated) loopback ports is taken by something else.
start() {
  local name="$1" ports="$2" port; shift 2
  if running "$name"; then return 0; fi
  for port in ${ports//,/ }; do
    if port_busy "$port"; then
      command -v ss >/dev/null && ss -ltnp "sport = :$port" >&2 || true
      die "127.0.0.1:$port, needed by $name, is in use by another process (a control plane whose state was removed? stop it first)"
    fi
  done
  STARTED+=("$name")
  [[ -f "$LOGS/$name.log" ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.prev"
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$PIDS/$name.pid"
  # Until the fork has exec'd the command, its cmdline is still this script's, which `running`
  # would take for another process: on a loaded machine that window is long enough to be seen.
  for ((i = 0; i < 100; i++)); do
    grep -qaF -- "$RAYDAR_LOCAL/" "/proc/$pid/cmdline" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
}
# ready <name> <timeout> <what> <probe command...>: wait, failing early (with its log) if the process died.
ready() {
  local name="$1" timeout="$2" what="$3"; shift 3
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! running "$name"; then
      tail -n 25 "$LOGS/$name.log" >&2 || true
      die "$name exited while waiting for $what (log: $LOGS/$name.log)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 25 "$LOGS/$name.log" >&2 || true
      die "timed out after ${timeout}s waiting for $what (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}
# Real Ray heads need network namespaces, so root; without it pods run as before, with no Ray behind them.
REAL_RAY=0
if [[ $(id -u) == 0 && -x "$RAYDAR_LOCAL/ray/bin/python" ]] && command -v ip >/dev/null; then REAL_RAY=1; fi
all=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok kuberay-operator)
((REAL_RAY)) && all+=(ray-heads dcgm-exporter prometheus)
already=1; for c in "${all[@]}"; do running "$c" || already=0; done

# ---------------------------------------------------------------- certificates (openssl, EC P-256)
ssl() { openssl "$@" 2>"$PKI/.openssl.err" || { cat "$PKI/.openssl.err" >&2; die "openssl $1 failed"; }; }
if [[ ! -f "$PKI/ca.crt" ]]; then
  ssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -days 3650 \
    -subj "/CN=raydar-local-ca" -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
fi
# cert <name> <subject> <serverAuth|clientAuth> [subjectAltName]
cert() {
  local name="$1" subj="$2" usage="$3" san="${4:-}"
  [[ -f "$PKI/$name.crt" ]] && return 0
  ssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "$subj" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [[ -n "$san" ]]; then echo "subjectAltName=$san"; fi
  } >"$PKI/$name.ext"
  ssl x509 -req -sha256 -days 3650 -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
cert apiserver "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# Client cert the apiserver presents to aggregated apiservers (requestheader auth), signed by the same CA.
cert front-proxy-client "/CN=front-proxy-client" clientAuth
cert kwok-serving "/CN=kwok" serverAuth "IP:127.0.0.1,DNS:localhost"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=raydar-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kwok "/O=system:masters/CN=kwok-controller" clientAuth
# ray/heads.py reads pods and nothing else (the ClusterRole below).
cert ray-heads "/CN=raydar:local-ray-heads" clientAuth
# So does ray/dcgm.py, the dcgm-exporter stand-in (its own ClusterRole below).
cert dcgm-exporter "/CN=raydar:local-dcgm-exporter" clientAuth
# Prometheus discovers the exporter pods as a production one does (kubernetes_sd_configs): list/watch
# pods, its own identity and ClusterRole below.
cert prometheus "/CN=raydar:local-prometheus" clientAuth
# raydar-server authenticates as the ServiceAccount deploy/kustomize/rbac/cluster-wide binds: it reads and
# impersonates, exactly as in a real cluster.
cert raydar "/O=system:serviceaccounts/O=system:serviceaccounts:raydar/CN=system:serviceaccount:raydar:raydar" clientAuth
# The operator authenticates as the ServiceAccount KubeRay's own RBAC (config/rbac) binds.
cert kuberay "/O=system:serviceaccounts/O=system:serviceaccounts:ray-system/CN=system:serviceaccount:ray-system:kuberay-operator" clientAuth
if [[ ! -f "$PKI/sa.key" ]]; then
  ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/sa.key"
  ssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
fi
chmod 600 "$PKI"/*.key

# kubeconfig <file> <cert-name>
kubeconfig() {
  local file="$1" name="$2"
  [[ -f "$file" && "$file" -nt "$PKI/$name.crt" ]] && return 0
  (umask 077; cat >"$file" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: raydar-local
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$name.crt")
    client-key-data: $(base64 -w0 "$PKI/$name.key")
contexts:
- name: raydar-local
  context:
    cluster: raydar-local
    user: $name
current-context: raydar-local
YAML
  )
}
kubeconfig "$KUBECONFIG_ADMIN" admin
kubeconfig "$KUBECONFIG_RAYDAR" raydar
for n in controller-manager scheduler kwok kuberay; do kubeconfig "$KCFG/$n.kubeconfig" "$n"; done

# ---------------------------------------------------------------- etcd
start etcd "$ETCD_CLIENT_PORT,$ETCD_PEER_PORT" "$BIN/etcd" --name raydar-local --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "raydar-local=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --snapshot-count 10000 --quota-backend-bytes 2147483648 --log-level warn
etcd_ok() { curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" | grep -q '"health":"true"'; }
ready etcd 60 "etcd health" etcd_ok

# ---------------------------------------------------------------- kube-apiserver
start kube-apiserver "$APISERVER_PORT" "$BIN/kube-apiserver" \
  --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --authorization-mode=Node,RBAC --anonymous-auth=false \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --allow-privileged=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --requestheader-client-ca-file="$PKI/ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --enable-admission-plugins=ExtendedResourceToleration \
  --profiling=false --v=1
api_ok() {
  curl -fsS --max-time 2 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "$APISERVER_URL/readyz" | grep -qx ok
}
ready kube-apiserver 90 "kube-apiserver /readyz" api_ok
T_API=$(since "$T0")

# ---------------------------------------------------------------- scheduler
start kube-scheduler "$SCHEDULER_PORT" "$BIN/kube-scheduler" \
  --kubeconfig="$KCFG/scheduler.kubeconfig" \
  --authentication-kubeconfig="$KCFG/scheduler.kubeconfig" --authorization-kubeconfig="$KCFG/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --profiling=false --v=1

# ---------------------------------------------------------------- CRDs (kwok Logs/ClusterLogs, KubeRay), RBAC
# Before the controller-manager starts, so its garbage collector watches RayClusters from its first
# discovery (otherwise it only notices the new resource at its 30s rediscovery).
if ((!already)); then
  kubectl apply --server-side --force-conflicts -f "$SHARE/kwok/crds/" -f "$SHARE/kuberay/crds/" >/dev/null
  kubectl create namespace ray-system --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
  kubectl apply --server-side --force-conflicts -k "$SHARE/kuberay/rbac" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s crd/rayclusters.ray.io crd/rayjobs.ray.io \
    crd/rayservices.ray.io crd/logs.kwok.x-k8s.io crd/clusterlogs.kwok.x-k8s.io >/dev/null
fi
T_CRD=$(since "$T0")

# ---------------------------------------------------------------- controller-manager
# Lean controller set for 2 cores: no HPA (no metrics server), no volumes (kwok pods have none),
# no CSR signing, no cloud. Kept: garbage collector (KubeRay relies on ownerReference GC), namespace,
# serviceaccount(-token), root CA publisher, replicaset/deployment/job (RayJob submitters), endpoints...
start kube-controller-manager "$CONTROLLER_MANAGER_PORT" "$BIN/kube-controller-manager" \
  --kubeconfig="$KCFG/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$KCFG/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$KCFG/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --controllers='*,-horizontal-pod-autoscaler-controller,-persistentvolume-binder-controller,-persistentvolume-attach-detach-controller,-persistentvolume-expander-controller,-persistentvolume-protection-controller,-persistentvolumeclaim-protection-controller,-ephemeral-volume-controller,-certificatesigningrequest-signing-controller,-certificatesigningrequest-approving-controller,-certificatesigningrequest-cleaner-controller,-cloud-node-lifecycle-controller,-service-lb-controller,-node-route-controller,-node-ipam-controller,-resourceclaim-controller,-device-taint-eviction-controller,-storage-version-migrator-controller,-kube-apiserver-serving-clustertrustbundle-publisher-controller,-podcertificaterequest-cleaner-controller' \
  --profiling=false --v=1

# ---------------------------------------------------------------- kwok and its fake nodes
start kwok "$KWOK_PORT" "$BIN/kwok" --kubeconfig="$KCFG/kwok.kubeconfig" --config="$SHARE/kwok/stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-ip=127.0.0.1 --node-port="$KWOK_PORT" --server-address="127.0.0.1:$KWOK_PORT" \
  --tls-cert-file="$PKI/kwok-serving.crt" --tls-private-key-file="$PKI/kwok-serving.key" \
  --cidr="$POD_CIDR" --node-lease-duration-seconds=40 --enable-crds=Logs,ClusterLogs
if ((!already)); then
  kubectl apply --server-side --force-conflicts -f "$LOCAL_DIR/nodes.yaml" >/dev/null
  # dcgm-exporter's DaemonSet on the GPU nodes (pods without containers: ray/dcgm.py answers for them).
  kubectl apply --server-side --force-conflicts -f "$LOCAL_DIR/dcgm-exporter.yaml" >/dev/null
fi

# ---------------------------------------------------------------- KubeRay operator
start kuberay-operator "$KUBERAY_METRICS_PORT,$KUBERAY_PROBE_PORT" env KUBECONFIG="$KCFG/kuberay.kubeconfig" "$BIN/ray-operator" \
  --metrics-addr="127.0.0.1:$KUBERAY_METRICS_PORT" --health-probe-bind-address="127.0.0.1:$KUBERAY_PROBE_PORT" \
  --enable-leader-election=false --log-stdout-encoder=console

# ---------------------------------------------------------------- real Ray behind head pods
if ((REAL_RAY)); then
  if ((!already)); then
    kubectl create clusterrole raydar:local-ray-heads --verb=get,list,watch --resource=pods \
      --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
    kubectl create clusterrolebinding raydar:local-ray-heads --clusterrole=raydar:local-ray-heads \
      --user=raydar:local-ray-heads --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
  fi
  start ray-heads "" "$RAYDAR_LOCAL/ray/bin/python" "$LOCAL_DIR/ray/heads.py" \
    --apiserver="$APISERVER_URL" --ca="$PKI/ca.crt" --cert="$PKI/ray-heads.crt" --key="$PKI/ray-heads.key" \
    --bridge="$POD_BRIDGE" --gateway="$POD_GATEWAY" --netns-prefix="$NETNS_PREFIX" --state="$RAY_STATE" \
    --venv="$RAYDAR_LOCAL/ray" --max-heads="${RAYDAR_RAY_HEADS:-4}" --ray-version="$RAY_VERSION"
  # The dcgm-exporter STAND-IN (no GPU here): serves :9400/metrics at each exporter pod's IP, on the
  # dummy interface $DCGM_LINK; a GPU is busy while its RayCluster's Ray runs a job. Reads pods only.
  if ((!already)); then
    kubectl create clusterrole raydar:local-dcgm-exporter --verb=get,list,watch --resource=pods \
      --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
    kubectl create clusterrolebinding raydar:local-dcgm-exporter --clusterrole=raydar:local-dcgm-exporter \
      --user=raydar:local-dcgm-exporter --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
  fi
  start dcgm-exporter "" "$RAYDAR_LOCAL/ray/bin/python" "$LOCAL_DIR/ray/dcgm.py" \
    --apiserver="$APISERVER_URL" --ca="$PKI/ca.crt" --cert="$PKI/dcgm-exporter.crt" --key="$PKI/dcgm-exporter.key" \
    --link="$DCGM_LINK" --interval="${RAYDAR_DCGM_INTERVAL:-5}"
  # Real Prometheus scraping the stand-in exporters as a production cluster's does (the GPU Operator's
  # ServiceMonitor): exporter pods found through the apiserver, each scraped at <pod IP>:9400 from the
  # host (where dcgm.py answers), honor_labels so dcgm-exporter's own pod/namespace/container labels
  # (the pod holding the GPU) are kept as they are. Scraped at the stand-in's collection interval: its
  # values change once per interval. raydar --prometheus $PROMETHEUS_URL queries it.
  if ((!already)); then
    kubectl create clusterrole raydar:local-prometheus --verb=get,list,watch --resource=pods \
      --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
    kubectl create clusterrolebinding raydar:local-prometheus --clusterrole=raydar:local-prometheus \
      --user=raydar:local-prometheus --dry-run=client -o yaml | kubectl apply --server-side -f - >/dev/null
  fi
  cat >"$STATE/prometheus.yml" <<YAML
# Generated by deploy/local/up.sh (removed by down.sh).
global:
  scrape_interval: ${RAYDAR_DCGM_INTERVAL:-5}s
scrape_configs:
  - job_name: gpu-metrics
    # As the GPU Operator's ServiceMonitor for dcgm-exporter: the exporter's own labels (pod,
    # namespace, container of the pod holding a GPU) win over any target label of the same name.
    honor_labels: true
    kubernetes_sd_configs:
      - role: pod
        api_server: $APISERVER_URL
        namespaces:
          names: [gpu-operator]
        tls_config:
          ca_file: $PKI/ca.crt
          cert_file: $PKI/prometheus.crt
          key_file: $PKI/prometheus.key
    relabel_configs:
      # dcgm-exporter's pods only (the DaemonSet's label), one target per pod: its metrics port.
      - source_labels: [__meta_kubernetes_pod_label_app]
        regex: nvidia-dcgm-exporter
        action: keep
      - source_labels: [__meta_kubernetes_pod_container_port_number]
        regex: "9400"
        action: keep
      - source_labels: [__meta_kubernetes_pod_ip]
        regex: (.+)
        replacement: \${1}:9400
        target_label: __address__
YAML
  start prometheus "$PROMETHEUS_PORT" "$BIN/prometheus" --config.file="$STATE/prometheus.yml" \
    --storage.tsdb.path="$STATE/prometheus" --storage.tsdb.retention.time=1d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
else
  log "no real Ray behind head pods: it needs root (network namespaces) and deploy/local/build.sh ray"
  log "no dcgm-exporter stand-in on the GPU nodes either (its exporter pods run, nothing answers at :9400)"
  log "and no Prometheus (it scrapes the stand-in): $PROMETHEUS_URL does not answer"
fi

# ---------------------------------------------------------------- readiness
https_ok() { curl -fsSk --max-time 2 "https://127.0.0.1:$1/healthz" | grep -qx ok; }
ready kube-controller-manager 60 "kube-controller-manager /healthz" https_ok "$CONTROLLER_MANAGER_PORT"
ready kube-scheduler 60 "kube-scheduler /healthz" https_ok "$SCHEDULER_PORT"
ready kwok 60 "kwok /healthz" https_ok "$KWOK_PORT"
nodes_ready() { kubectl wait --for=condition=Ready --timeout=5s node -l type=kwok; }
ready kwok 90 "the 4 kwok nodes to be Ready" nodes_ready
operator_ok() {
  curl -fsS --max-time 2 "http://127.0.0.1:$KUBERAY_PROBE_PORT/readyz" | grep -qx ok &&
    grep -Eq 'RayCluster.*Starting workers|Starting workers.*raycluster' "$LOGS/kuberay-operator.log"
}
ready kuberay-operator 90 "the KubeRay operator (readyz and RayCluster workers started)" operator_ok
heads_ok() { grep -q "watching head pods" "$LOGS/ray-heads.log"; }
((REAL_RAY)) && ready ray-heads 30 "ray-heads to watch head pods" heads_ok
# Every GPU node's exporter pod Running and answering at its IP (the DaemonSet controller creates them
# once the nodes are Ready; kwok runs them).
dcgm_ok() {
  local gpu_nodes ips ip
  gpu_nodes="$(kubectl get nodes -l nvidia.com/gpu.present=true -o name | wc -l)"
  ips="$(kubectl -n gpu-operator get pods -l app=nvidia-dcgm-exporter \
    -o jsonpath='{range .items[?(@.status.phase=="Running")]}{.status.podIP}{"\n"}{end}' | grep .)" || return 1
  (($(wc -l <<<"$ips") == gpu_nodes)) || return 1
  for ip in $ips; do curl -fsS --noproxy "*" --max-time 2 -o /dev/null "http://$ip:9400/metrics" || return 1; done
}
((REAL_RAY)) && ready dcgm-exporter 60 "the dcgm-exporter stand-in to serve every GPU node's exporter pod" dcgm_ok
# Prometheus ready and every GPU node's exporter scraped successfully (up == 1), so a query right
# after up.sh already has GPU series.
prometheus_ok() {
  local gpu_nodes
  gpu_nodes="$(kubectl get nodes -l nvidia.com/gpu.present=true -o name | wc -l)"
  curl -fsS --noproxy "*" --max-time 2 "$PROMETHEUS_URL/-/ready" >/dev/null &&
    curl -fsS --noproxy "*" --max-time 2 --get --data-urlencode 'query=count(up{job="gpu-metrics"} == 1)' \
      "$PROMETHEUS_URL/api/v1/query" | grep -Eq "\"value\":\[[0-9.]+,\"$gpu_nodes\"\]"
}
((REAL_RAY)) && ready prometheus 60 "Prometheus to scrape every GPU node's dcgm-exporter ($PROMETHEUS_URL)" prometheus_ok

if ((already)); then
  log "already running (checked in $(since "$T0"))"
else
  log "started: ${STARTED[*]:-nothing} (apiserver ready at ${T_API}, CRDs established at ${T_CRD}, all ready in $(since "$T0"))"
fi
echo "kubeconfig: $KUBECONFIG_ADMIN   (source deploy/local/env.sh for KUBECONFIG and PATH)"
if ((REAL_RAY)); then echo "prometheus: $PROMETHEUS_URL   (dcgm-exporter metrics, job gpu-metrics)"; fi

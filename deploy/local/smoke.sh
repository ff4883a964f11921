#!/usr/bin/env bash
# Smoke test of the running local control plane (start it with up.sh): applies KubeRay's own sample
# RayCluster (config/samples/ray-cluster.sample.yaml of the pinned ray-operator module), waits until the
# real operator created head and worker pods, kwok runs them and the RayCluster reports HeadPodReady=True
# and state "ready"; then deletes it and waits until garbage collection removed its pods.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NS="${SMOKE_NAMESPACE:-raydar-smoke}"
SAMPLE="$SHARE/kuberay/samples/ray-cluster.sample.yaml"
TIMEOUT="${SMOKE_TIMEOUT:-120}"
kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" --request-timeout=20s "$@"; }
fail() {
  printf 'SMOKE FAILED: %s\n' "$*" >&2
  {
    echo "--- rayclusters / pods / events in $NS"
    kubectl -n "$NS" get rayclusters,pods,services -o wide || true
    kubectl -n "$NS" get raycluster "$NAME" -o jsonpath='{.status}' || true; echo
    kubectl -n "$NS" get events --sort-by=.lastTimestamp | tail -n 15 || true
    echo "--- last lines of $LOGS/kuberay-operator.log"
    tail -n 15 "$LOGS/kuberay-operator.log" || true
  } >&2
  exit 1
}
# until_ok <timeout> <what> <command...>
until_ok() {
  local timeout="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $what"
    sleep 0.2
  done
}

[[ -f "$SAMPLE" ]] || die "$SAMPLE is missing: run deploy/local/build.sh first"
[[ -f "$KUBECONFIG_ADMIN" ]] && kubectl get --raw /readyz >/dev/null 2>&1 \
  || die "the local control plane is not running: run deploy/local/up.sh first"
NAME="$(sed -n 's/^  name: *//p' "$SAMPLE" | head -n1)"
SEL="ray.io/cluster=$NAME"

if kubectl get namespace "$NS" >/dev/null 2>&1; then
  log "removing namespace $NS left over from an earlier run"
  kubectl delete namespace "$NS" --timeout=90s >/dev/null || die "could not delete leftover namespace $NS"
fi
kubectl create namespace "$NS" >/dev/null

T0=$(now)
log "applying KubeRay $KUBERAY_VERSION sample RayCluster $NS/$NAME"
kubectl -n "$NS" apply --server-side -f "$SAMPLE" >/dev/null
pods_running() { # head and at least one worker exist, Running and Ready
  local out
  out="$(kubectl -n "$NS" get pods -l "$SEL" -o jsonpath='{range .items[*]}{.metadata.labels.ray\.io/node-type} {.status.phase} {.status.podIP} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')"
  grep -Eq '^head Running [0-9.]+ True$' <<<"$out" && grep -Eq '^worker Running [0-9.]+ True$' <<<"$out"
}
until_ok "$TIMEOUT" "head and worker pods Running+Ready (operator created them, scheduler bound them, kwok ran them)" pods_running
T_PODS=$(since "$T0")
head_ready() {
  [[ "$(kubectl -n "$NS" get raycluster "$NAME" -o jsonpath='{.status.conditions[?(@.type=="HeadPodReady")].status}')" == True ]]
}
until_ok "$TIMEOUT" "RayCluster condition HeadPodReady=True" head_ready
state_ready() { [[ "$(kubectl -n "$NS" get raycluster "$NAME" -o jsonpath='{.status.state}')" == ready ]]; }
until_ok "$TIMEOUT" "RayCluster .status.state == ready" state_ready
T_READY=$(since "$T0")
log "RayCluster ready: pods Running+Ready after $T_PODS, HeadPodReady=True and state=ready after $T_READY"
kubectl -n "$NS" get pods -l "$SEL" -o wide --no-headers | awk '{print "  pod", $1, $3, $6, $7}'
kubectl -n "$NS" get raycluster "$NAME" \
  -o jsonpath='  status: state={.status.state} readyWorkers={.status.readyWorkerReplicas} desiredCPU={.status.desiredCPU} head={.status.head.podIP} svc={.status.head.serviceName}{"\n"}'

T1=$(now)
kubectl -n "$NS" delete raycluster "$NAME" --wait=false >/dev/null
gone() { [[ -z "$(kubectl -n "$NS" get pods,services -l "$SEL" -o name)" ]] && ! kubectl -n "$NS" get raycluster "$NAME" >/dev/null 2>&1; }
until_ok 90 "the RayCluster's pods and services to be garbage-collected after deleting it" gone
log "deleted: RayCluster, pods and services gone after $(since "$T1")"
kubectl delete namespace "$NS" --timeout=90s >/dev/null || fail "namespace $NS was not deleted within 90s"
log "smoke OK in $(since "$T0") total"

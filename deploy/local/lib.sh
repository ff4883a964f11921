# Shared settings of the deploy/local scripts (sourced, not run).
# shellcheck shell=bash
LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$LOCAL_DIR/../.." && pwd)"
RAYDAR_LOCAL="${RAYDAR_LOCAL:-$REPO_ROOT/.local}"
mkdir -p "$RAYDAR_LOCAL"
RAYDAR_LOCAL="$(cd "$RAYDAR_LOCAL" && pwd)"
BIN="$RAYDAR_LOCAL/bin"
SHARE="$RAYDAR_LOCAL/share"        # files copied from the pinned modules (CRDs, samples, kwok stages)
STATE="$RAYDAR_LOCAL/state"        # everything up.sh creates; down.sh removes it
PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
KUBECONFIG_ADMIN="$RAYDAR_LOCAL/kubeconfig"
KUBECONFIG_RAYDAR="$RAYDAR_LOCAL/kubeconfig-raydar"   # raydar-server's own identity (read + impersonate)

# shellcheck source=/dev/null
source "$REPO_ROOT/tools/versions.env"

# Loopback only, uncommon ports. RAYDAR_PORT_OFFSET (default 0) shifts them all, so that two
# checkouts on one machine (a developer's and a CI run's) can each run a control plane.
_o="${RAYDAR_PORT_OFFSET:-0}"
ETCD_CLIENT_PORT=$((12379 + _o))
ETCD_PEER_PORT=$((12380 + _o))
APISERVER_PORT=$((16443 + _o))
CONTROLLER_MANAGER_PORT=$((16457 + _o))
SCHEDULER_PORT=$((16459 + _o))
KWOK_PORT=$((16250 + _o))     # kwok's kubelet-like server (logs, exec) that the apiserver reaches
KUBERAY_METRICS_PORT=$((16080 + _o))
KUBERAY_PROBE_PORT=$((16082 + _o))
# Prometheus (root only, with the dcgm-exporter stand-in): its HTTP API, which raydar's --prometheus
# mode and the tests query.
PROMETHEUS_PORT=$((16090 + _o))
APISERVER_URL="https://127.0.0.1:$APISERVER_PORT"
PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT"
SERVICE_CIDR=10.96.0.0/16
# Pod IPs (kwok hands them out from the start of the range). Each control plane gets its own /16, and
# its own bridge for the network namespaces of real Ray heads (ray/heads.py), whose host side is the
# range's last address: offsets in steps of 1000 keep two planes on one machine apart.
POD_CIDR=10.$((244 + _o / 1000)).0.1/16
POD_GATEWAY=10.$((244 + _o / 1000)).255.254/16
POD_BRIDGE=raydar-br$_o
NETNS_PREFIX=rdr$_o-
# The dummy interface on which ray/dcgm.py (the dcgm-exporter stand-in) puts its exporter pods' IPs.
DCGM_LINK=rdr$_o-dcgm
# Ray's temp dirs (one per head): short, because Ray's unix socket paths under it are capped at 107 bytes.
RAY_STATE=/tmp/raydar-ray$_o
unset _o

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }'; }

# wait_for <timeout-seconds> <description> <command...>: retry the command until it succeeds.
wait_for() {
  local timeout="$1" what="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${timeout}s waiting for $what"
    fi
    sleep 0.2
  done
}

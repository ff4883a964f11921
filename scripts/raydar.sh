#!/usr/bin/env bash
# Runs the built raydar-server against the local control plane (deploy/local).
#
#   scripts/raydar.sh start [HOST:PORT]   start in the background (log and pid under $RAYDAR_LOCAL)
#   scripts/raydar.sh stop                stop it
#   scripts/raydar.sh run -- CMD...       start on a free loopback port, wait until ready, run CMD
#                                         with RAYDAR_URL (and RAYDAR_PID, RAYDAR_SERVER and
#                                         RAYDAR_SERVER_KUBECONFIG for tests that start their own,
#                                         and the local plane's PROMETHEUS_URL) set, stop the
#                                         server, exit with CMD's status
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
local_dir=${RAYDAR_LOCAL:-$root/.local}
server=${CARGO_TARGET_DIR:-$root/target}/release/raydar-server
export LEPTOS_SITE_ROOT=${LEPTOS_SITE_ROOT:-$root/target/site}
export KUBECONFIG=${KUBECONFIG:-$local_dir/kubeconfig}
pidfile=$local_dir/raydar.pid
# raydar-server runs as its own ServiceAccount on the local control plane (read + impersonate,
# deploy/kustomize/rbac/cluster-wide), as it would in a real cluster; elsewhere, as KUBECONFIG says.
server_kubeconfig=${RAYDAR_KUBECONFIG:-$local_dir/kubeconfig-raydar}
[ -f "$server_kubeconfig" ] || server_kubeconfig=$KUBECONFIG
# Local use: dev mode (loopback only), everyone is RAYDAR_DEV_USER (default developer, whom
# deploy/local/dev-rbac.yaml lets launch and tear down).
auth_flags=(--auth dev --dev-user "${RAYDAR_DEV_USER:-developer}" --dev-groups "${RAYDAR_DEV_GROUPS:-dev}")

die() { echo "error: $*" >&2; exit 1; }

# wait_ready URL PID: until /readyz answers 200, or the process dies, or 60 s pass.
wait_ready() {
  local url=$1 pid=$2 log=$3
  for _ in $(seq 600); do
    if curl -fsS --max-time 2 "$url/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "raydar-server exited (log: $log)"; }
    sleep 0.1
  done
  tail -n 20 "$log" >&2
  curl -sS --max-time 2 "$url/readyz" >&2 || true
  die "raydar-server did not become ready at $url within 60 s"
}

start() {
  local addr=${1:-127.0.0.1:3000}
  [ -x "$server" ] || die "$server is missing: run make build"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "raydar already running (pid $(cat "$pidfile"))"; return
  fi
  mkdir -p "$local_dir"
  # History (SQLite) under .local/data: kept across restarts of raydar and of the local plane.
  KUBECONFIG=$server_kubeconfig setsid "$server" --addr "$addr" "${auth_flags[@]}" --data-dir "$local_dir/data" \
    >"$local_dir/raydar.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  wait_ready "http://$addr" "$!" "$local_dir/raydar.log"
  echo "raydar running (pid $(cat "$pidfile"), log $local_dir/raydar.log)"
}

stop() {
  if [ -f "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  fi
}

run() {
  [ -x "$server" ] || die "$server is missing: run make build"
  local port log status=0
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  log=$(mktemp -t raydar-server.XXXXXX.log)
  # Each run keeps its history apart (RAYDAR_DATA_DIR for the tests that restart raydar on it).
  run_data=$(mktemp -d -t raydar-data.XXXXXX)
  KUBECONFIG=$server_kubeconfig "$server" --addr "127.0.0.1:$port" "${auth_flags[@]}" --data-dir "$run_data" >"$log" 2>&1 </dev/null &
  run_pid=$!
  trap 'kill "$run_pid" 2>/dev/null || true; rm -rf "$run_data"' EXIT
  wait_ready "http://127.0.0.1:$port" "$run_pid" "$log"
  # The local plane's Prometheus, at the address its port offset gives (deploy/local/lib.sh).
  local prometheus
  prometheus=$(bash -c 'source "$1/deploy/local/lib.sh" && printf %s "$PROMETHEUS_URL"' _ "$root")
  RAYDAR_URL="http://127.0.0.1:$port" RAYDAR_PID="$run_pid" RAYDAR_SERVER="$server" RAYDAR_SERVER_KUBECONFIG="$server_kubeconfig" RAYDAR_DATA_DIR="$run_data" \
    PROMETHEUS_URL="${PROMETHEUS_URL:-$prometheus}" "$@" || status=$?
  kill "$run_pid" 2>/dev/null || true
  wait "$run_pid" 2>/dev/null || true
  [ "$status" -eq 0 ] || { echo "--- raydar-server log: $log" >&2; tail -n 30 "$log" >&2; }
  return "$status"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  run) shift; [ "${1:-}" = "--" ] && shift; run "$@" ;;
  *) die "usage: $0 start [HOST:PORT] | stop | run -- CMD..." ;;
esac

#!/usr/bin/env bash
# Stops every process up.sh started (by its pid file) and removes the state ($RAYDAR_LOCAL/state and
# the admin kubeconfig). Built binaries stay. Harmless when nothing runs.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Reverse start order: clients first, etcd last.
order=(prometheus dcgm-exporter ray-heads kuberay-operator kwok kube-scheduler kube-controller-manager kube-apiserver etcd)
ours() { kill -0 "$1" 2>/dev/null && grep -qaF -- "$RAYDAR_LOCAL/" "/proc/$1/cmdline" 2>/dev/null; }
stopped=()
for name in "${order[@]}"; do
  f="$PIDS/$name.pid"
  [[ -f "$f" ]] || continue
  pid="$(cat "$f")"
  if [[ -n "$pid" ]] && ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done   # up to 5s, then force
    if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    stopped+=("$name")
  fi
  rm -f "$f"
done
# What ray-heads leaves if it was killed: Ray's namespaces (and processes) and the bridge.
if [[ $(id -u) == 0 && -x "$RAYDAR_LOCAL/ray/bin/python" ]]; then
  "$RAYDAR_LOCAL/ray/bin/python" "$LOCAL_DIR/ray/heads.py" --cleanup --bridge="$POD_BRIDGE" --netns-prefix="$NETNS_PREFIX"
  # ...and what the dcgm-exporter stand-in leaves: its dummy interface (the exporter pods' IPs).
  "$RAYDAR_LOCAL/ray/bin/python" "$LOCAL_DIR/ray/dcgm.py" --cleanup --link="$DCGM_LINK"
fi
rm -rf "$STATE" "$KUBECONFIG_ADMIN" "$KUBECONFIG_RAYDAR" "$RAY_STATE"
if ((${#stopped[@]})); then log "stopped: ${stopped[*]}; removed $STATE"; else log "nothing was running; removed $STATE"; fi

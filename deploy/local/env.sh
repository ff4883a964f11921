# Source me: `source deploy/local/env.sh` (bash or zsh). Points kubectl & co at the local control plane.
if [ -n "${BASH_SOURCE:-}" ]; then _raydar_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; else _raydar_here="$(cd "$(dirname "$0")" && pwd)"; fi
RAYDAR_LOCAL="${RAYDAR_LOCAL:-$(cd "$_raydar_here/../.." && pwd)/.local}"
export RAYDAR_LOCAL
export KUBECONFIG="$RAYDAR_LOCAL/kubeconfig"
# Prometheus' API (deploy/local/lib.sh's PROMETHEUS_URL, same port offset): root planes only.
export PROMETHEUS_URL="http://127.0.0.1:$((16090 + ${RAYDAR_PORT_OFFSET:-0}))"
case ":$PATH:" in *":$RAYDAR_LOCAL/bin:"*) ;; *) export PATH="$RAYDAR_LOCAL/bin:$PATH" ;; esac
unset _raydar_here

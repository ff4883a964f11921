# Source me: `source deploy/local/env.sh` (bash or zsh). Points kubectl & co at the local control plane.
if [ -n "${BASH_SOURCE:-}" ]; then _raydar_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; else _raydar_here="$(cd "$(dirname "$0")" && pwd)"; fi
RAYDAR_LOCAL="${RAYDAR_LOCAL:-$(cd "$_raydar_here/../.." && pwd)/.local}"
export RAYDAR_LOCAL
export KUBECONFIG="$RAYDAR_LOCAL/kubeconfig"
case ":$PATH:" in *":$RAYDAR_LOCAL/bin:"*) ;; *) export PATH="$RAYDAR_LOCAL/bin:$PATH" ;; esac
unset _raydar_here

#!/usr/bin/env bash
# second-plane.sh up|down: a second local control plane beside the first, for the tests of one
# raydar serving several Kubernetes clusters (--contexts): its own state under
# $RAYDAR_LOCAL/second (the first's binaries, linked), its ports shifted by 1000 and its own pod
# range, with what objects.sh installs. `up` prints the folder, whose kubeconfig (admin) and
# kubeconfig-raydar (raydar's identity) reach it; `down` stops it and removes its state.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib.sh"
second="$RAYDAR_LOCAL/second"
export RAYDAR_LOCAL="$second" RAYDAR_PORT_OFFSET=1000
case "${1:-}" in
  up)
    first="$(dirname "$second")"
    mkdir -p "$second"
    for part in bin share ray; do
      [[ -e "$first/$part" ]] && ln -sfn "$first/$part" "$second/$part"
    done
    "$here/up.sh" >"$second/up.log" 2>&1 || { cat "$second/up.log" >&2; exit 1; }
    KUBECONFIG="$second/kubeconfig" "$here/objects.sh" >>"$second/up.log" 2>&1 \
      || { cat "$second/up.log" >&2; exit 1; }
    echo "$second"
    ;;
  down)
    [[ -d "$second" ]] && "$here/down.sh" >/dev/null 2>&1
    rm -rf "$second"
    ;;
  *) die "usage: second-plane.sh up|down" ;;
esac

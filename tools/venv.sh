#!/usr/bin/env bash
# Makes a Python environment with exactly the packages a requirements file pins, once: the API
# fuzzer's (tools/api-fuzz) and the Python client's tests (integrations/python) use it.
#
#   tools/venv.sh NAME REQUIREMENTS [PROJECT]
#       prints the venv's path, $RAYDAR_LOCAL/NAME; (re)creates it only when it is missing or
#       REQUIREMENTS (or python3) changed since it was made. PROJECT, a directory with a
#       pyproject.toml, is installed into it editable and without dependencies (they are pinned).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=$1 req=$2 project=${3:-}
local_dir=${RAYDAR_LOCAL:-$root/.local}
venv=$local_dir/$name
stampfile=$venv/.requirements.sha256

log() { printf '[%s] %s: %s\n' "$(date +%H:%M:%S)" "$name" "$*" >&2; }
die() { printf 'ERROR: %s: %s\n' "$name" "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not on PATH"
# The stamp: the pins, the project's metadata and the interpreter they were installed for.
key="$(cat "$req" ${project:+"$project/pyproject.toml"} | sha256sum | cut -d' ' -f1) $(python3 --version 2>&1)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stampfile" 2>/dev/null)" = "$key" ]; then
  echo "$venv"
  exit 0
fi

log "installing $(grep -vc '^#' "$req") pinned packages from PyPI into $venv"
mkdir -p "$local_dir"
rm -f "$stampfile"
if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
  log "python3 -m venv failed: installing Debian's python3-venv"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv --clear "$venv"
fi
pip=("$venv/bin/pip" --quiet --disable-pip-version-check --no-input)
"${pip[@]}" install -r "$req"
if [ -n "$project" ]; then
  # Built as pip builds any package (its pyproject's build backend, fetched for the build only).
  "${pip[@]}" install --no-deps -e "$project"
fi
# Every package the venv holds must be one requirements.txt pins (nothing pulled in unpinned, as a
# dependency that only another Python version needs would be), but the project itself.
"$venv/bin/python" - "$req" "$([ -n "$project" ] && sed -n 's/^name = "\(.*\)"/\1/p' "$project/pyproject.toml")" <<'PY'
import importlib.metadata as md, re, sys
pinned = {}
for line in open(sys.argv[1]):
    line = line.split('#', 1)[0].strip()
    if line:
        name, version = line.split('==')
        pinned[re.sub(r'[-_.]+', '-', name).lower()] = version
bad = []
for d in md.distributions():
    name = re.sub(r'[-_.]+', '-', d.metadata['Name']).lower()
    if name in ('pip', 'setuptools', 'wheel', sys.argv[2]):
        continue
    if pinned.get(name) != d.version:
        bad.append(f"{d.metadata['Name']}=={d.version}")
if bad:
    sys.exit("not pinned by requirements.txt: " + ", ".join(sorted(bad)) + " (re-resolve it, see its header)")
PY
"$venv/bin/pip" check --disable-pip-version-check >/dev/null || die "pip check failed in $venv"
echo "$key" >"$stampfile"
log "installed"
echo "$venv"

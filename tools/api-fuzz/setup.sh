#!/usr/bin/env bash
# Makes the Python environment of the API fuzzer: $RAYDAR_LOCAL/api-fuzz, a venv with exactly the
# packages tools/api-fuzz/requirements.txt pins (schemathesis and everything it pulls in).
#
#   tools/api-fuzz/setup.sh      prints the venv's path; (re)creates it only when it is missing or
#                                requirements.txt (or python3) changed since it was made
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
local_dir=${RAYDAR_LOCAL:-$root/.local}
venv=$local_dir/api-fuzz
req=$here/requirements.txt
stampfile=$venv/.requirements.sha256

log() { printf '[%s] api-fuzz: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'ERROR: api-fuzz: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not on PATH (schemathesis 4 needs 3.9 or newer)"
# The stamp: the pins and the interpreter they were installed for.
key="$(sha256sum "$req" | cut -d' ' -f1) $(python3 --version 2>&1)"
if [ -x "$venv/bin/schemathesis" ] && [ "$(cat "$stampfile" 2>/dev/null)" = "$key" ]; then
  echo "$venv"
  exit 0
fi

log "installing $(grep -m1 '^schemathesis==' "$req") from PyPI into $venv"
mkdir -p "$local_dir"
rm -f "$stampfile"
if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
  log "python3 -m venv failed: installing Debian's python3-venv"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  python3 -m venv --clear "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$req"
# Every package the venv holds must be one requirements.txt pins (nothing pulled in unpinned, as a
# dependency that only another Python version needs would be).
"$venv/bin/python" - "$req" <<'EOF'
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
    if name in ('pip', 'setuptools', 'wheel'):
        continue
    if pinned.get(name) != d.version:
        bad.append(f"{d.metadata['Name']}=={d.version}")
if bad:
    sys.exit("not pinned by requirements.txt: " + ", ".join(sorted(bad)) + " (re-resolve it, see its header)")
EOF
"$venv/bin/pip" check --disable-pip-version-check >/dev/null || die "pip check failed in $venv"
echo "$key" >"$stampfile"
log "installed: $("$venv/bin/schemathesis" --version)"
echo "$venv"

#!/usr/bin/env bash
# Makes the Python environment of the API fuzzer: $RAYDAR_LOCAL/api-fuzz, a venv with exactly the
# packages tools/api-fuzz/requirements.txt pins (schemathesis and everything it pulls in).
#
#   tools/api-fuzz/setup.sh      prints the venv's path; (re)creates it only when it is missing or
#                                requirements.txt (or python3) changed since it was made
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../venv.sh" api-fuzz "$here/requirements.txt"

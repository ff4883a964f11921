#!/usr/bin/env bash
# Installs what building and testing raydar needs and the machine lacks. Idempotent: each step checks
# first and skips what is already present at the pinned version (tools/versions.env).
#
# Usage: tools/install.sh [rust|web|browser|database|all]   (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/tools/versions.env"
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export PATH="$cargo_home/bin:$PATH"

step() { printf '==> %s\n' "$*"; }

# Installs a cargo tool from its published crate with a lockfile tweak, because the crate's own
# lockfile pins a dependency this toolchain or the registry cannot provide (see
# ../shared/research/leptos-offline-build.md). These are build tools, not shipped code, so they are
# compiled for build speed (no LTO, more codegen units). $1 crate, $2 version, $3 binary, $4.. `cargo update` args.
install_patched() {
  local crate=$1 version=$2 bin=$3; shift 3
  if "$bin" --version 2>/dev/null | grep -qF "$version"; then
    step "$crate $version present"; return
  fi
  step "installing $crate $version (slow: compiles from source)"
  local src
  src=$(ls "$cargo_home"/registry/cache/*/"$crate-$version.crate" 2>/dev/null | head -n1 || true)
  if [ -z "$src" ]; then
    # The first, locked install fails on this toolchain but leaves the crate in cargo's cache.
    cargo install "$crate@$version" --locked >/dev/null 2>&1 || true
    src=$(ls "$cargo_home"/registry/cache/*/"$crate-$version.crate" 2>/dev/null | head -n1 || true)
  fi
  [ -n "$src" ] || { echo "error: could not fetch $crate-$version.crate from crates.io" >&2; exit 1; }
  local work
  work=$(mktemp -d)
  tar xzf "$src" -C "$work"
  ( cd "$work/$crate-$version" && cargo update "$@" \
      && CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=2 \
         cargo install --path . --locked --force )
  rm -rf "$work"
}

rust_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    step "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  # make lint: the formatter and the linter, part of most toolchains but not of a minimal one.
  for component in rustfmt clippy; do
    if ! rustup component list --installed | grep -q "^$component"; then
      step "adding the $component component"
      rustup component add "$component"
    fi
  done
  install_patched wasm-bindgen-cli "$WASM_BINDGEN_VERSION" wasm-bindgen -p webpki-roots --precise 1.0.10
}

web_tools() {
  # Prebuilt from npm. wasm-opt from binaryen, because Debian's older wasm-opt emits wasm that fails
  # to hydrate; esbuild minifies the JS glue and the stylesheet.
  local bin=$root/tools/node_modules/.bin
  if ! "$bin/wasm-opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}" \
     || [ "$("$bin/esbuild" --version 2>/dev/null)" != "$ESBUILD_VERSION" ]; then
    step "installing binaryen $BINARYEN_VERSION (wasm-opt) and esbuild $ESBUILD_VERSION from npm"
    (cd "$root/tools" && npm ci --no-audit --no-fund --loglevel=error)
  else
    step "wasm-opt $BINARYEN_VERSION and esbuild $ESBUILD_VERSION present"
  fi
}

browser_tools() {
  if [ ! -x /usr/bin/chromium ]; then
    step "installing Debian chromium"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    step "chromium present"
  fi
  if [ ! -d "$root/end2end/node_modules/playwright-core" ]; then
    step "installing playwright-core $PLAYWRIGHT_CORE_VERSION (no browser download)"
    (cd "$root/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
  else
    step "playwright-core present"
  fi
}

# History's PostgreSQL backend is tested against a real server (Debian's), which the tests start
# themselves on loopback as the postgres user; SQLite is compiled in.
database_tools() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    step "installing Debian postgresql"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    step "postgresql present"
  fi
}

case "${1:-all}" in
  rust) rust_tools ;;
  web) web_tools ;;
  browser) browser_tools ;;
  database) database_tools ;;
  all) rust_tools; web_tools; browser_tools; database_tools ;;
  *) echo "usage: $0 [rust|web|browser|database|all]" >&2; exit 2 ;;
esac

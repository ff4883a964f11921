#!/usr/bin/env bash
# Builds raydar: the server binary and the browser bundle under target/site, the output
# `cargo leptos build --release --split` gives for the [[workspace.metadata.leptos]] in Cargo.toml,
# without cargo-leptos. cargo-leptos takes 25 minutes to compile on a fresh machine (it carries a JS
# compiler, a CSS compiler and a project generator); the steps it runs for us are these:
#
#   1. cargo builds the server, and the app's `hydrate` lib for wasm32 with relocations kept;
#   2. tools/wasm-split splits that wasm at its `#[lazy]` points into chunks (and the manifest the
#      server reads for preload links);
#   3. wasm-bindgen writes the JS glue for the main module; wasm-opt (npm binaryen) shrinks every
#      module; esbuild bundles the chunk loader into the main module's JS, minifies it and the
#      stylesheet;
#   4. public/ is copied to the site root and everything is precompressed (br, gz).
#
# Steps 2 and 3 take a minute or two and depend only on the wasm cargo wrote: they are skipped when
# its bytes (and the tool versions) are those of the last complete run.
#
# Usage: tools/site.sh          (CARGO_TARGET_DIR as the Makefile sets it; tools/install.sh first)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/tools/versions.env"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
target=$CARGO_TARGET_DIR
# The names in Cargo.toml's [[workspace.metadata.leptos]]: output-name, site-root, site-pkg-dir.
name=raydar
site=$root/target/site
pkg=$site/pkg
bin=$root/tools/node_modules/.bin
export LEPTOS_SITE_ROOT=$site

step() { printf '==> %s\n' "$*"; }

step "server"
if [ "${RAYDAR_BUILD:-}" = tests ]; then
  # `make test`: the server as its test suites build it (the whole workspace, with the features
  # dev-dependencies add), and the suites themselves, so that they reuse this build rather than
  # compile the server a second time with other features.
  cargo test --release --workspace --no-run
else
  cargo build --release -p raydar-server
fi

step "browser wasm"
# --emit-relocs: the splitter needs the linker's relocations to move functions between modules.
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Clink-args=--emit-relocs" \
  cargo build -p raydar-app --lib --target wasm32-unknown-unknown \
  --no-default-features --features hydrate --profile wasm-release
wasm=$target/wasm32-unknown-unknown/wasm-release/raydar_app.wasm
cargo build --release --quiet --manifest-path "$root/tools/wasm-split/Cargo.toml"
splitter=$target/release/raydar-wasm-split

stamp=$pkg/.built-from
want="$(sha256sum "$wasm" | cut -d' ' -f1) wasm-bindgen $WASM_BINDGEN_VERSION binaryen $BINARYEN_VERSION esbuild $ESBUILD_VERSION $(sha256sum "$splitter" "$root/tools/wasm-retry.js" "$0" | cut -d' ' -f1 | tr '\n' ' ')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$pkg/$name.js" ]; then
  step "browser bundle unchanged"
else
  # Clear first: chunk names carry hashes, and a stale chunk must not be served.
  rm -rf "$pkg"
  mkdir -p "$pkg"
  step "splitting at the lazy points"
  mapfile -t chunks < <("$splitter" "$wasm" "$pkg" "$name")
  step "wasm-bindgen"
  # --keep-lld-exports and --no-demangle: the chunks import the main module's functions by their
  # linker names.
  wasm-bindgen --target=web --keep-lld-exports --no-demangle --out-name="$name" --out-dir="$pkg" \
    "${wasm%.wasm}_split.wasm"
  # The name leptos's hydration script loads.
  mv "$pkg/${name}_bg.wasm" "$pkg/$name.wasm"
  # --converge and no custom sections: 0.6 KB (br) less on every first load, for seconds of build.
  step "wasm-opt on $((${#chunks[@]} + 1)) modules"
  printf '%s\0' "$pkg/$name.wasm" "${chunks[@]}" | xargs -0 -n1 -P"$(nproc)" sh -c \
    '"$0" -Oz --converge --strip-debug --strip-producers --strip-target-features \
    --enable-bulk-memory --enable-nontrapping-float-to-int "$1" -o "$1"' "$bin/wasm-opt"
  # The main module's loader and the chunk loader try a failed fetch again (tools/wasm-retry.js
  # says why). Missing either is an error: an upgrade of wasm-bindgen or the splitter must not
  # drop the retry silently.
  loaders=("$pkg/$name.js" "$pkg"/__wasm_split*.js)
  [ -f "${loaders[1]}" ] || { echo "error: no __wasm_split*.js chunk loader in $pkg" >&2; exit 1; }
  grep -q 'WebAssembly.instantiateStreaming' "${loaders[0]}" \
    || { echo "error: $name.js does not load its module with WebAssembly.instantiateStreaming" >&2; exit 1; }
  for loader in "${loaders[@]}"; do
    cat "$root/tools/wasm-retry.js" "$loader" >"$loader.tmp" && mv "$loader.tmp" "$loader"
  done
  step "bundling and minifying JS"
  # The chunk loader goes into the app's module, which is the only one to import it (and which it
  # imports back): one request fewer on every first load, whose headers weighed as much as the
  # loader. wasm-bindgen lists the loader once per import in one object literal: the same module
  # each time, so the repeated keys are harmless.
  "$bin/esbuild" "${loaders[0]}" --bundle --format=esm --minify --log-level=warning \
    --log-override:duplicate-object-key=silent --outfile="${loaders[0]}" --allow-overwrite
  # Leptos still names the loader in a modulepreload link on lazy pages: an empty module, not a 404.
  echo "// Bundled into $name.js (tools/site.sh)." >"${loaders[1]}"
  echo "$want" >"$stamp"
fi

step "stylesheet and assets"
"$bin/esbuild" "$root/style/main.css" --minify --log-level=warning --outfile="$pkg/$name.css"
cp -R "$root/public/." "$site/"
node "$root/tools/precompress.mjs" "$pkg"

//! Splits the app's wasm at its `#[lazy]` split points, as `cargo leptos build --split` does.
//!
//! Usage: `raydar-wasm-split INPUT.wasm PKG_DIR OUTPUT_NAME`
//!
//! Writes into `PKG_DIR`: one `.wasm` per split chunk, the loader `__wasm_split.*.js` the main
//! module imports them through, and `__wasm_split_manifest.json`, from which leptos's server
//! renders `<link rel="preload">` for a lazy route's chunks. The main module goes beside the input
//! as `<stem>_split.wasm`, for wasm-bindgen. Prints each chunk's path, one per line, so the caller
//! can optimise them.
//!
//! The names (`./{OUTPUT_NAME}.js`, the loader's name, the manifest's) are the ones leptos 0.8
//! looks for; cargo-leptos 0.3.11's `wasm_split_tools` sets the same.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, pkg_dir, output_name] = args.as_slice() else {
        eprintln!("usage: raydar-wasm-split INPUT.wasm PKG_DIR OUTPUT_NAME");
        return ExitCode::from(2);
    };
    match split(Path::new(input), Path::new(pkg_dir), output_name) {
        Ok(chunks) => {
            for chunk in chunks {
                println!("{}", chunk.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("raydar-wasm-split: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn split(input: &Path, pkg_dir: &Path, output_name: &str) -> Result<Vec<PathBuf>, String> {
    let wasm = std::fs::read(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let stem = input.file_stem().and_then(|s| s.to_str()).ok_or("input has no file name")?;
    let main_out = input.with_file_name(format!("{stem}_split.wasm"));
    let main_module = format!("./{output_name}.js");
    std::fs::create_dir_all(pkg_dir).map_err(|e| format!("creating {}: {e}", pkg_dir.display()))?;
    let result = wasm_split_cli_support::transform({
        let mut opts = wasm_split_cli_support::Options::new(&wasm);
        opts.output_dir = pkg_dir;
        opts.main_out_path = &main_out;
        opts.main_module = &main_module;
        opts.link_name = "./__wasm_split.______________________.js";
        opts
    })
    .map_err(|e| format!("splitting {}: {e:#}", input.display()))?;
    let manifest = serde_json::to_string_pretty(&result.prefetch_map).map_err(|e| e.to_string())?;
    let manifest_path = pkg_dir.join("__wasm_split_manifest.json");
    std::fs::write(&manifest_path, manifest)
        .map_err(|e| format!("writing {}: {e}", manifest_path.display()))?;
    Ok(result.split_modules)
}

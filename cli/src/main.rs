//! The `raydar` binary: see the crate docs for what it does and how it is laid out.

use std::process::ExitCode;

use clap::Parser;
use raydar_cli::Cli;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Usage errors print clap's message and exit with 2.
    let cli = Cli::parse();
    match raydar_cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            for line in error.lines() {
                eprintln!("error: {line}");
            }
            ExitCode::FAILURE
        }
    }
}

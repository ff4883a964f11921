//! What the CLI tests share: running the built `raydar` binary and reading what it printed.

#![allow(dead_code)] // each test binary uses its own part of this

use std::path::PathBuf;
use std::process::Command;

/// What one run of `raydar` did.
#[derive(Debug)]
pub struct Run {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "raydar failed: {self:#?}");
        &self.stdout
    }

    /// Stdout as JSON, after asserting success.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Asserts a failure that printed only `error:` lines (no panic, no usage text) and returns them.
    pub fn error_lines(&self) -> Vec<&str> {
        assert_eq!(self.code, 1, "expected a failure: {self:#?}");
        assert!(!self.stderr.contains("panicked"), "raydar panicked: {}", self.stderr);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.starts_with('[') && !l.starts_with("warning:"))
            .collect();
        assert!(
            !lines.is_empty() && lines.iter().all(|l| l.starts_with("error: ")),
            "not error lines: {self:#?}"
        );
        lines
    }
}

/// `raydar` with `args`, run in the repository root with the test's environment, minus the
/// variables that would change who `render` names.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_raydar"));
    command.args(args).current_dir(repo_root()).env_remove("RAYDAR_USER").env_remove("RAYDAR_TEAM");
    command
}

/// Runs a command and collects what it printed.
pub fn run(command: &mut Command) -> Run {
    let output = command.output().expect("the raydar binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `raydar` with `args` and extra environment `env`.
pub fn raydar_with(args: &[&str], env: &[(&str, &str)]) -> Run {
    run(command(args).envs(env.iter().copied()))
}

/// Runs `raydar` with `args`.
pub fn raydar(args: &[&str]) -> Run {
    raydar_with(args, &[])
}

/// Runs `raydar` with no Kubernetes configuration at all: no kubeconfig, not in a pod.
pub fn raydar_offline(args: &[&str]) -> Run {
    run(command(args)
        .env("KUBECONFIG", repo_root().join("cli/tests/no-such-kubeconfig"))
        .env("HOME", repo_root().join("cli/tests/no-such-home"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT"))
}

/// The repository root, where `deploy/templates` is.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

//! A throwaway PostgreSQL server (Debian's `postgresql`, tools/install.sh) on 127.0.0.1 and a
//! free port, its files in a scratch folder, run as the `postgres` user when the tests run as
//! root (PostgreSQL refuses root). Stopped and removed when dropped.

use std::path::PathBuf;
use std::process::Command;

use super::Scratch;

pub struct Postgres {
    /// The data folder and socket, removed last.
    scratch: Scratch,
    bin: PathBuf,
    pub port: u16,
}

/// The folder of Debian's PostgreSQL programs (the newest, if several).
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (tools/install.sh database)")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("a PostgreSQL with initdb under /usr/lib/postgresql")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// `program args` as the user PostgreSQL runs as; panics with its output when it fails.
fn run(program: &PathBuf, args: &[&str]) {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let output = command.args(args).output().expect("PostgreSQL's programs run");
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Postgres {
    /// A new server, started, with a database `raydar` owned by the user `raydar` (no password:
    /// loopback and trust, for tests only).
    pub fn start() -> Postgres {
        let scratch = Scratch::new("postgres");
        if is_root() {
            let status = Command::new("chown").arg("postgres:").arg(&scratch.0).status().unwrap();
            assert!(status.success(), "chown of the scratch folder to postgres");
        }
        let bin = bin_dir();
        let data = scratch.0.join("data");
        let data_arg = data.to_string_lossy().into_owned();
        run(&bin.join("initdb"), &["-D", &data_arg, "-A", "trust", "-U", "raydar", "--no-sync"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let postgres = Postgres { scratch, bin, port };
        postgres.start_again();
        postgres
    }

    /// Its URL, for `--database`.
    pub fn url(&self) -> String {
        format!("postgres://raydar@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> String {
        self.scratch.0.join("data").to_string_lossy().into_owned()
    }

    /// Starts it (again), waiting until it takes connections.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.scratch.0.display()
        );
        let log = self.scratch.0.join("postgres.log").to_string_lossy().into_owned();
        run(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    /// Stops it at once (open connections are cut), waiting until it has.
    pub fn stop(&self) {
        run(&self.bin.join("pg_ctl"), &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let mut command = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            Command::new(&pg_ctl)
        };
        let _ = command.args(["-D", &self.data(), "-m", "immediate", "-w", "stop"]).output();
    }
}

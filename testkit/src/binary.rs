//! Drives the real `outflow` binary: `outflow serve` on a free port, `outflow token create`, and
//! other commands, each with its own data dir.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::api::Api;
use crate::process::Process;

/// The `outflow` binary of this build. Cargo builds it for the package's tests and benchmarks
/// and names it in `CARGO_BIN_EXE_outflow` when it runs them; a test binary started by hand
/// finds it next to its own `deps/` directory.
pub fn outflow_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("CARGO_BIN_EXE_outflow").unwrap_or_else(|_| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
            profile_dir.join("outflow").to_string_lossy().into_owned()
        })
    })
}

/// `outflow <args>` with `--data-dir dir` and extra environment; panics on failure.
pub fn outflow(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out =
        Command::new(outflow_bin()).arg("--data-dir").arg(dir).args(args).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "outflow {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A new operator token named `name`, as the CLI prints it (last line of output).
pub fn operator_token(dir: &Path, name: &str) -> String {
    last_line(&outflow(dir, &[], &["token", "create", "--role", "operator", "--name", name]))
}

/// A new agent token bound to `broker`, as the CLI prints it.
pub fn agent_token(dir: &Path, broker: &str) -> String {
    last_line(&outflow(dir, &[], &["token", "create", "--role", "agent", "--broker-id", broker, "--name", broker]))
}

fn last_line(out: &str) -> String {
    out.lines().last().unwrap().trim().to_owned()
}

/// What `outflow serve` prints once it accepts connections, before its base URL.
const LISTENING: &str = "outflow listening on ";

/// A running `outflow serve`, killed on drop.
pub struct Server {
    process: Process,
    pub base: String,
    pub dir: PathBuf,
}

impl Server {
    /// `outflow serve` on a free loopback port.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::start_on(dir, "127.0.0.1:0", env)
    }

    /// `outflow serve --listen <listen>`; returns once it listens.
    pub fn start_on(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Server {
        let mut process = Process::spawn(
            Command::new(outflow_bin())
                .args(["serve", "--listen", listen, "--data-dir"])
                .arg(dir)
                .envs(env.iter().copied())
                .stderr(Stdio::null()),
        );
        let line = process.wait_for(LISTENING, Duration::from_secs(120));
        let base = line[LISTENING.len()..].to_owned();
        Server { process, base, dir: dir.to_owned() }
    }

    /// A fresh operator token, as the CLI prints it.
    pub fn operator_token(&self) -> String {
        operator_token(&self.dir, "e2e")
    }

    /// An API client with a fresh operator token.
    pub fn api(&self) -> Api {
        Api::new(&self.base, self.operator_token())
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

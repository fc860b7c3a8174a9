//! Child processes: the one way tests and benchmarks start one and wait for what it prints,
//! and plain runs of a tool.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// A child process, killed on drop, whose stdout lines arrive on a channel: a thread reads
/// them, so the child never blocks on a full pipe.
pub struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    name: String,
    /// Its stdin, when the command piped it.
    pub stdin: Option<ChildStdin>,
}

impl Process {
    /// Starts `command` with stdout piped; stdin and stderr are as the command sets them.
    pub fn spawn(command: &mut Command) -> Process {
        let name = command.get_program().to_string_lossy().into_owned();
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {name}: {e} (ops/install-deps.sh installs the test tools)"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, lines, name, stdin }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line within `timeout`; None when time ran out or stdout was closed.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next line starting with `prefix` (others are skipped) within `timeout`; panics when
    /// time runs out or the process closes its stdout first.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{}: no line starting with {prefix:?} within {timeout:?}", self.name)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{} exited before printing a line starting with {prefix:?}", self.name)
                }
            }
        }
    }

    /// Reads lines until each of `expected` was seen; after `timeout`, or when the process
    /// ends first, panics naming `who` with the process's stderr (when piped).
    pub fn expect_all(&mut self, expected: &[String], timeout: Duration, who: &str) {
        let deadline = Instant::now() + timeout;
        let mut missing: std::collections::BTreeSet<&String> = expected.iter().collect();
        while !missing.is_empty() {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    missing.remove(&line);
                }
                Err(_) => panic!(
                    "{who}: {} of {} records missing after {timeout:?}; its stderr:\n{}",
                    missing.len(),
                    expected.len(),
                    self.finish().1
                ),
            }
        }
    }

    /// Kills the process (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the process; returns the stdout lines not read yet and its stderr (empty unless
    /// piped).
    pub fn finish(&mut self) -> (Vec<String>, String) {
        self.kill();
        // The reader thread ends once the dead process's stdout is drained.
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            rest.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (rest, stderr)
    }

    /// Sends SIGINT (a Kafka consumer closes and commits on it) and waits.
    pub fn interrupt(mut self) {
        let _ = self.signal("-INT");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        assert!(self.signal("-TERM").success(), "kill -TERM {} failed", self.name);
        self.child.wait().unwrap()
    }

    fn signal(&self, signal: &str) -> ExitStatus {
        Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs a command, returning its output whatever the exit status.
pub fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (is it installed? .ci/run installs it)"))
}

/// Runs a command that must succeed; returns stdout and stderr together.
pub fn run_ok(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = run(program, args, cwd);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs an unpacked bundle's `consumer.py` until it printed every record in `expected`, then
/// stops it (its group commits what it read).
pub fn consume_with_bundle(bundle: &std::path::Path, expected: &[String]) {
    let mut py = Process::spawn(std::process::Command::new("python3").arg("consumer.py").current_dir(bundle));
    py.expect_all(expected, std::time::Duration::from_secs(90), "consumer.py");
    py.interrupt();
}

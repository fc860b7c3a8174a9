//! The dashboard in a real browser: headless Debian Chromium (driven by playwright-core from
//! npm, tests/browser/e2e.mjs) against the real server and a real broker. Signs in, creates a
//! tenant, activates, allowlists an address, downloads the zip, runs the zip's consumer.py, and
//! watches the group's lag on the Streaming tab rise and fall back to zero. Screenshots of each
//! step land in `<target>/tmp/browser_e2e/`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::binary::run_ok;
use common::kafka::{broker_and_server, repo_root};

/// A child process whose stdout lines arrive on a channel.
struct Lines {
    child: Child,
    rx: mpsc::Receiver<String>,
}

impl Lines {
    fn spawn(mut command: Command) -> (Lines, Option<ChildStdin>) {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("spawn");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (Lines { child, rx }, stdin)
    }

    /// The next line starting with `prefix` (others are skipped), within `timeout`.
    fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line starting with {prefix:?} within {timeout:?}"),
            }
        }
    }

    /// Interrupts the process (consumer.py closes its consumer and commits on SIGINT) and waits.
    fn interrupt(mut self) {
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the zip's consumer.py until it printed every record in `expected`, then stops it.
fn consume(bundle: &Path, expected: &[String]) {
    let mut command = Command::new("python3");
    command.arg("consumer.py").current_dir(bundle);
    let (py, _) = Lines::spawn(command);
    let mut missing: std::collections::BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = py.rx.recv_timeout(left).unwrap_or_else(|_| panic!("consumer.py still misses {}", missing.len()));
        missing.remove(line.as_str());
    }
    py.interrupt();
}

fn records(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("198.51.100.{} - - [25/Nov/2026:06:45:12 +0000] \"GET /{tag}/{i} HTTP/1.1\" 200 512 \"-\" \"browser-e2e\" www.example.com HIT 0.004 mad1", i % 250 + 1)).collect()
}

fn tell(stdin: &mut ChildStdin) {
    stdin.write_all(b"NEXT\n").unwrap();
    stdin.flush().unwrap();
}

#[test]
fn newcomer_goes_from_sign_in_to_consuming_in_a_real_browser() {
    let work = tempfile::tempdir().unwrap();
    let (broker, server) = broker_and_server(work.path());
    let token = server.operator_token();
    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser_e2e");
    let _ = std::fs::remove_dir_all(&out);
    let downloads = work.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();

    let browser_dir = repo_root().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core missing: run `npm ci --prefix tests/browser` (ops/install-deps.sh does)"
    );
    let mut command = Command::new("node");
    command
        .arg("e2e.mjs")
        .current_dir(&browser_dir)
        .env("BASE", &server.base)
        .env("TOKEN", &token)
        .env("OUT", &out)
        .env("DOWNLOADS", &downloads)
        .stdin(Stdio::piped());
    let (mut driver, stdin) = Lines::spawn(command);
    let mut stdin = stdin.unwrap();

    let zip = driver.wait_for("ZIP ", Duration::from_secs(180)).trim_start_matches("ZIP ").to_owned();
    let bundle = work.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    run_ok("unzip", &["-q", &zip, "-d", bundle.to_str().unwrap()], work.path());
    assert!(bundle.join("consumer.py").exists());

    let first = records("first", 20);
    broker.produce("c83", &first);
    consume(&bundle, &first);
    let second = records("second", 30);
    broker.produce("c83", &second);
    tell(&mut stdin);

    let lagging = driver.wait_for("LAGGING ", Duration::from_secs(90));
    let lag: i64 = lagging.trim_start_matches("LAGGING ").trim().parse().unwrap();
    assert_eq!(lag, 30, "the tab shows the records not yet consumed");
    consume(&bundle, &second);
    tell(&mut stdin);
    driver.wait_for("DONE", Duration::from_secs(90));

    let shots: Vec<_> = std::fs::read_dir(&out).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert_eq!(shots.len(), 8, "a screenshot per step: {shots:?}");
}

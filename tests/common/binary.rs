//! Drives the real `outflow` binary: `outflow serve` on a free port, `outflow token create`, and
//! other commands, each with its own data dir.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub fn outflow_bin() -> &'static str {
    env!("CARGO_BIN_EXE_outflow")
}

/// `outflow <args>` with `--data-dir dir` and extra environment; panics on failure.
pub fn outflow(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out =
        Command::new(outflow_bin()).arg("--data-dir").arg(dir).args(args).envs(env.iter().copied()).output().unwrap();
    assert!(out.status.success(), "outflow {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A running `outflow serve`, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub dir: PathBuf,
}

impl Server {
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(outflow_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("outflow serve exited before listening").unwrap();
            if let Some(url) = line.strip_prefix("outflow listening on ") {
                break url.to_owned();
            }
        };
        Server { child, base, dir: dir.to_owned() }
    }

    /// A fresh operator token, as the CLI prints it (last line of output).
    pub fn operator_token(&self) -> String {
        let out = outflow(&self.dir, &[], &["token", "create", "--role", "operator", "--name", "e2e"]);
        out.lines().last().unwrap().trim().to_owned()
    }
}

impl Server {
    /// Creates tenant `id` named `name`, activates it and downloads its zip, with `token`.
    pub async fn tenant_bundle(&self, token: &str, id: i64, name: &str) -> Vec<u8> {
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{}/api/v1/tenants", self.base))
            .bearer_auth(token)
            .json(&serde_json::json!({"id": id, "name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201, "{name:?}");
        let activated =
            client.put(format!("{}/api/v1/tenants/{id}/streaming", self.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(activated.status(), 201);
        let zip = client
            .get(format!("{}/api/v1/tenants/{id}/bundle.zip", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(zip.status(), 200);
        assert_eq!(zip.headers()["content-disposition"], format!("attachment; filename=\"c{id}.zip\""));
        zip.bytes().await.unwrap().to_vec()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

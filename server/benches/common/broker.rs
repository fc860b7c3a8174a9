//! A real broker for benchmarks: `ops/kafka/broker.sh up`, its exports, and `down` on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Stops the broker started in `dir` when dropped.
pub struct BrokerGuard(pub PathBuf, pub PathBuf);

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(self.1.join("ops/kafka/broker.sh")).arg("down").arg(&self.0).status();
    }
}

/// Starts a broker with its state under `dir`, certificates from the outflow CA in `data`;
/// returns the `export` lines of broker.sh as a map.
pub fn broker_up(root: &Path, dir: &Path, data: &Path) -> BTreeMap<String, String> {
    let out = Command::new("bash")
        .arg(root.join("ops/kafka/broker.sh"))
        .arg("up")
        .arg(dir)
        .env("OUTFLOW_BIN", env!("CARGO_BIN_EXE_outflow"))
        .env("OUTFLOW_DATA_DIR", data)
        .output()
        .expect("run broker.sh");
    assert!(out.status.success(), "broker.sh up failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches(|c| c == '"' || c == '\'').to_owned()))
        .collect()
}

//! The agent's half of the request log: read the broker's log file as it grows, count the
//! request-log lines by principal, client address and API, and report the counts. Lines appear
//! only while an operator has the request log on; at other times this reads nothing new.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use super::requests::{RequestLogCount, RequestLogReport, parse_line};

/// Most bytes read per round (the rest waits for the next one).
const MAX_READ: u64 = 64 << 20;

/// The file, and where the agent is in it.
pub struct Tail {
    path: PathBuf,
    offset: u64,
    counts: BTreeMap<(String, String, String), i64>,
}

impl Tail {
    /// Starts at the file's end: lines written before the agent started are not counted.
    pub fn new(path: PathBuf) -> Self {
        let offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        Self { path, offset, counts: BTreeMap::new() }
    }

    /// Counts the complete lines written since the last read. A file shorter than where the agent
    /// was has been truncated or replaced (a restart, a rotation): read from its start.
    pub fn read(&mut self) -> anyhow::Result<()> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        let len = file.metadata()?.len();
        if len < self.offset {
            self.offset = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        file.take(MAX_READ).read_to_end(&mut buf)?;
        // Up to the last newline: a line being written is read whole next time.
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else { return Ok(()) };
        for line in String::from_utf8_lossy(&buf[..end]).lines() {
            if let Some(key) = parse_line(line) {
                *self.counts.entry(key).or_default() += 1;
            }
        }
        self.offset += end as u64 + 1;
        Ok(())
    }

    /// The counts not reported yet (taken; put back with [`Tail::restore`] if the report fails).
    pub fn take(&mut self) -> Vec<RequestLogCount> {
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((principal, client_address, api), requests)| RequestLogCount {
                principal,
                client_address,
                api,
                requests,
            })
            .collect()
    }

    pub fn restore(&mut self, counts: Vec<RequestLogCount>) {
        for c in counts {
            *self.counts.entry((c.principal, c.client_address, c.api)).or_default() += c.requests;
        }
    }
}

/// Reads and reports every `interval` until the process stops; failures are logged and retried
/// (counts kept), and never touch the allowlist work.
pub async fn run(path: PathBuf, interval: Duration, server: String, token: String, broker_id: Option<String>) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the request-log HTTP client; the request log is not reported");
            return;
        }
    };
    let mut tail = Tail::new(path);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(e) = tail.read() {
            tracing::warn!(error = format!("{e:#}"), "reading the request log failed");
        }
        let counts = tail.take();
        if counts.is_empty() {
            continue;
        }
        let report = RequestLogReport { broker_id: broker_id.clone(), counts };
        match send(&client, &server, &token, &report).await {
            Ok(()) => tracing::debug!(counts = report.counts.len(), "request log reported"),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "request-log report failed; kept for the next interval");
                tail.restore(report.counts);
            }
        }
    }
}

async fn send(client: &reqwest::Client, server: &str, token: &str, report: &RequestLogReport) -> anyhow::Result<()> {
    let response = client
        .post(format!("{server}/api/v1/agent/request-log"))
        .bearer_auth(token)
        .json(report)
        .send()
        .await
        .context("reporting the request log")?;
    if !response.status().is_success() {
        bail!("refused with {}: {}", response.status(), response.text().await.unwrap_or_default());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_new_complete_lines_and_follows_a_truncated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.log");
        let line = |api: i64| {
            format!(
                "[t] DEBUG Completed request:{{\"requestHeader\":{{\"requestApiKey\":{api}}},\"connection\":\"127.0.0.1:9093-198.51.100.10:5000-1\",\"principal\":\"User:c83.1\"}} (kafka.request.logger)\n"
            )
        };
        std::fs::write(&path, line(1)).unwrap();
        let mut tail = Tail::new(path.clone());
        tail.read().unwrap();
        assert!(tail.take().is_empty(), "what was there before the agent started is not counted");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text += &line(1);
        text += &line(1);
        text += &line(3);
        text += "[t] DEBUG Completed request:{\"partial"; // still being written
        std::fs::write(&path, &text).unwrap();
        tail.read().unwrap();
        let counts = tail.take();
        let got: Vec<(&str, &str, i64)> =
            counts.iter().map(|c| (c.client_address.as_str(), c.api.as_str(), c.requests)).collect();
        assert_eq!(got, [("198.51.100.10", "Fetch", 2), ("198.51.100.10", "Metadata", 1)]);
        tail.restore(counts);
        // Truncated (the broker restarted): read from the start.
        std::fs::write(&path, line(0)).unwrap();
        tail.read().unwrap();
        let apis: Vec<(String, i64)> = tail.take().into_iter().map(|c| (c.api, c.requests)).collect();
        assert_eq!(apis, [("Fetch".to_owned(), 2), ("Metadata".to_owned(), 1), ("Produce".to_owned(), 1)]);
    }
}

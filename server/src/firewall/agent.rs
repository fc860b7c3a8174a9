//! `outflow agent`: runs on each broker host, long-polls the server for the allowlist, applies it
//! with `nft -f` and reports the version it enforces.
//!
//! Fail-static: whatever goes wrong (server unreachable, bad answer, `nft` refusing the file),
//! the rules in the kernel stay as they were; the agent never flushes them to open or to closed.
//! The last applied ruleset is persisted, and re-applied at start before the server is asked.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Cidr;
use super::brokers::StatusReport;
use super::nft::{self, Ruleset};

/// The server's answer to a poll: everything every broker must allow, at one version.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentAllowlist {
    pub version: i64,
    /// Every tenant's entries, normalised CIDRs.
    #[schema(example = json!(["198.51.100.7/32", "2001:db8::/48"]))]
    pub entries: Vec<String>,
}

/// How the agent is run (`outflow agent --help`).
#[derive(Debug, Clone)]
pub struct Options {
    /// Base URL of the outflow server, e.g. `https://outflow.example.net`.
    pub server: String,
    pub token: String,
    /// This broker's id, if the operator gave one; the server takes the token's otherwise.
    pub broker_id: Option<String>,
    /// Where the last applied ruleset is kept.
    pub state_dir: PathBuf,
    /// The public TLS port of the broker.
    pub port: u16,
    /// The `nft` program.
    pub nft: PathBuf,
    /// Where to scrape the broker's counters for usage metering, if the agent meters.
    pub usage: Option<crate::usage::scrape::ScrapeOptions>,
    /// The broker's request log to count, and how often, if the agent reads it.
    pub request_log: Option<(PathBuf, Duration)>,
}

/// File name of the persisted ruleset in the state dir.
pub const RULESET_FILE: &str = "ruleset.nft";

const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(15);

/// What the agent enforces now.
#[derive(Debug, Clone)]
struct Applied {
    version: i64,
    elements: usize,
    /// What the kernel holds, when this process applied it (the base of the next delta).
    ruleset: Option<Ruleset>,
}

/// Runs until the process is stopped. Returns only on a setup error (state dir, HTTP client).
pub async fn run(options: Options) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.state_dir)
        .with_context(|| format!("creating state dir {}", options.state_dir.display()))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        // Longer than the server's longest hold (firewall.long_poll_secs is at most 120).
        .timeout(Duration::from_secs(150))
        .build()
        .context("building the HTTP client")?;
    let server = options.server.trim_end_matches('/').to_owned();
    // Metering runs beside the allowlist work and never holds it up (nor the other way round).
    if let Some(usage) = options.usage.clone() {
        tokio::spawn(crate::usage::scrape::run(
            usage,
            server.clone(),
            options.token.clone(),
            options.broker_id.clone(),
        ));
    }
    if let Some((path, every)) = options.request_log.clone() {
        let (token, broker) = (options.token.clone(), options.broker_id.clone());
        tokio::spawn(crate::usage::tail::run(path, every, server.clone(), token, broker));
    }
    let mut applied = restore(&options).await;
    let mut backoff = BACKOFF_MIN;
    loop {
        let outcome = round(&options, &client, &server, &mut applied).await;
        match outcome {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    retry_in_ms = backoff.as_millis() as u64,
                    "allowlist round failed; rules unchanged"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One poll → apply → report round.
async fn round(
    options: &Options,
    client: &reqwest::Client,
    server: &str,
    applied: &mut Option<Applied>,
) -> anyhow::Result<()> {
    let url = match applied.as_ref() {
        Some(a) => format!("{server}/api/v1/agent/allowlist?after={}", a.version),
        None => format!("{server}/api/v1/agent/allowlist"),
    };
    let response = client.get(url).bearer_auth(&options.token).send().await.context("polling the allowlist")?;
    let apply_error = match response.status() {
        reqwest::StatusCode::NO_CONTENT => None,
        reqwest::StatusCode::OK => {
            let list: AgentAllowlist = response.json().await.context("reading the allowlist")?;
            apply_list(options, &list, applied).await.err()
        }
        status => bail!("server answered {status}: {}", response.text().await.unwrap_or_default()),
    };
    let report = StatusReport {
        broker_id: options.broker_id.clone(),
        version: applied.as_ref().map_or(0, |a| a.version),
        entries: applied.as_ref().map_or(0, |a| a.elements as i64),
        error: apply_error.as_ref().map(|e| format!("{e:#}")),
    };
    let response = client
        .post(format!("{server}/api/v1/agent/status"))
        .bearer_auth(&options.token)
        .json(&report)
        .send()
        .await
        .context("reporting status")?;
    if !response.status().is_success() {
        bail!("status report refused with {}: {}", response.status(), response.text().await.unwrap_or_default());
    }
    match apply_error {
        // Reported; back off before the poll, which answers at once with the same list.
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn apply_list(options: &Options, list: &AgentAllowlist, applied: &mut Option<Applied>) -> anyhow::Result<()> {
    let started = Instant::now();
    let cidrs = list
        .entries
        .iter()
        .map(|e| e.parse::<Cidr>().map_err(|m| anyhow::anyhow!("server sent a bad entry: {m}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ruleset = nft::render(list.version, &cidrs, options.port);
    let rendered = started.elapsed();
    let base = applied.as_ref().and_then(|a| a.ruleset.as_ref());
    let delta = base.and_then(|old| nft::delta(old, &ruleset));
    let as_delta = match delta {
        Some(text) => match apply_delta(options, &ruleset, &text).await {
            Ok(()) => true,
            Err(e) => {
                // The table is not what this agent left (changed or removed by hand): replace it.
                tracing::warn!(error = format!("{e:#}"), "the allowlist delta did not apply; replacing the table");
                apply(options, &ruleset).await?;
                false
            }
        },
        None => {
            apply(options, &ruleset).await?;
            false
        }
    };
    tracing::info!(
        version = ruleset.version,
        elements = ruleset.elements,
        render_ms = rendered.as_millis() as u64,
        apply_ms = (started.elapsed() - rendered).as_millis() as u64,
        "{}",
        if as_delta { "allowlist applied as a delta" } else { "allowlist applied" }
    );
    *applied = Some(Applied { version: ruleset.version, elements: ruleset.elements, ruleset: Some(ruleset) });
    Ok(())
}

/// Applies the change to `ruleset` as `delta` (element commands only, one transaction), then
/// persists the whole ruleset for restarts.
async fn apply_delta(options: &Options, ruleset: &Ruleset, delta: &str) -> anyhow::Result<()> {
    let file = options.state_dir.join(format!("{RULESET_FILE}.delta"));
    tokio::fs::write(&file, delta).await.with_context(|| format!("writing {}", file.display()))?;
    nft_apply(&options.nft, &file).await?;
    let next = options.state_dir.join(format!("{RULESET_FILE}.next"));
    write_synced(&next, ruleset.text.as_bytes()).await?;
    tokio::fs::rename(&next, options.state_dir.join(RULESET_FILE))
        .await
        .with_context(|| format!("persisting {}", next.display()))?;
    Ok(())
}

/// Applies `ruleset` atomically and, once the kernel has it, makes it the persisted one.
async fn apply(options: &Options, ruleset: &Ruleset) -> anyhow::Result<()> {
    let next = options.state_dir.join(format!("{RULESET_FILE}.next"));
    write_synced(&next, ruleset.text.as_bytes()).await?;
    nft_apply(&options.nft, &next).await?;
    tokio::fs::rename(&next, options.state_dir.join(RULESET_FILE))
        .await
        .with_context(|| format!("persisting {}", next.display()))?;
    Ok(())
}

async fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await.with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes).await.with_context(|| format!("writing {}", path.display()))?;
    // On disk before the rename: a crash must leave the old file or the whole new one.
    file.sync_all().await.with_context(|| format!("syncing {}", path.display()))?;
    Ok(())
}

/// `nft -f file`: one kernel transaction, so a refused file changes nothing.
async fn nft_apply(nft: &Path, file: &Path) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(nft)
        .arg("-f")
        .arg(file)
        .output()
        .await
        .with_context(|| format!("running {}", nft.display()))?;
    if !out.status.success() {
        bail!("{} -f {} failed: {}", nft.display(), file.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Re-applies the persisted ruleset (after a reboot the kernel has none). Failing that, nothing is
/// enforced by this agent yet, and the first poll asks for the whole list.
async fn restore(options: &Options) -> Option<Applied> {
    let path = options.state_dir.join(RULESET_FILE);
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::info!(state = %path.display(), "no persisted ruleset; waiting for the server");
            return None;
        }
        Err(e) => {
            tracing::error!(state = %path.display(), error = %e, "cannot read the persisted ruleset");
            return None;
        }
    };
    let Some(version) = nft::version_of(&text) else {
        tracing::error!(state = %path.display(), "persisted ruleset has no version header; ignoring it");
        return None;
    };
    match nft_apply(&options.nft, &path).await {
        Ok(()) => {
            let elements = count_elements(&text);
            tracing::info!(version, elements, "persisted ruleset re-applied");
            // The next change replaces the table: this process did not render what it holds.
            Some(Applied { version, elements, ruleset: None })
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot re-apply the persisted ruleset");
            None
        }
    }
}

/// Set elements in a rendered file: one per line between `elements = {` and `}`.
fn count_elements(text: &str) -> usize {
    let mut inside = false;
    let mut n = 0;
    for line in text.lines().map(str::trim) {
        if line == "elements = {" {
            inside = true;
        } else if inside && line == "}" {
            inside = false;
        } else if inside {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_elements_of_a_rendered_file() {
        let cidrs: Vec<Cidr> =
            ["198.51.100.7", "198.51.100.9", "2001:db8::1"].iter().map(|c| c.parse().unwrap()).collect();
        let ruleset = nft::render(3, &cidrs, 9093);
        assert_eq!(count_elements(&ruleset.text), ruleset.elements);
        assert_eq!(count_elements(&nft::render(0, &[], 9093).text), 0);
    }
}

//! The agent's half of metering: scrape the broker's per-topic counters from the Prometheus JMX
//! exporter on loopback and report them to the server. The counters are cumulative, so a
//! failed scrape or report loses nothing: the next one carries the whole count (only a broker
//! crash between two scrapes loses what it counted since the last one).

use std::time::Duration;

use anyhow::{Context, bail};

use super::{ReportedCounter, UsageReport};
use crate::kafka::plan::topic_tenant;

/// The exporter's metric names (ops/kafka/common.sh's rules) and the counter each is.
const METRICS: [(&str, &str); 3] = [
    ("kafka_server_brokertopicmetrics_bytesoutpersec_total", "bytes_out"),
    ("kafka_server_brokertopicmetrics_bytesinpersec_total", "bytes_in"),
    ("kafka_server_brokertopicmetrics_messagesinpersec_total", "records_in"),
];

/// The exporter's name for the broker's start time.
const STARTED_AT: &str = "kafka_server_app_info_start_time_ms";

/// The tenant topics' counters in a Prometheus text exposition; other metrics and topics are
/// skipped. Values are written as floats (`1049.0`, `1.2345678E7`), exact below 2^53.
pub fn parse_exposition(text: &str) -> Vec<ReportedCounter> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((name, rest)) = line.split_once('{') else { continue };
        let Some(&(_, counter)) = METRICS.iter().find(|(m, _)| *m == name) else { continue };
        let Some((labels, value)) = rest.split_once('}') else { continue };
        let Some(topic) = label(labels, "topic") else { continue };
        if topic_tenant(topic).is_none() {
            continue;
        }
        let Some(value) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        if !(0.0..9.0e15).contains(&value) {
            continue;
        }
        out.push(ReportedCounter { topic: topic.to_owned(), counter: counter.to_owned(), value: value.round() as i64 });
    }
    out.sort_by(|a, b| (&a.topic, &a.counter).cmp(&(&b.topic, &b.counter)));
    out
}

/// The broker's start time in an exposition (ops/kafka/common.sh's rule for Kafka's `app-info`
/// `start-time-ms`), unix milliseconds.
pub fn parse_started_at(text: &str) -> Option<i64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (name, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let name = name.split_once('{').map_or(name, |(n, _)| n);
        if name != STARTED_AT {
            return None;
        }
        let value = rest.rsplit('}').next()?.split_whitespace().next()?.parse::<f64>().ok()?;
        (value > 0.0 && value < 9.0e15).then(|| value.round() as i64)
    })
}

/// The value of `name` in a label set such as `topic="c83",x="y"` (tenant topics need no
/// unescaping: letters, digits and `_`).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// Where and how often the agent scrapes.
#[derive(Debug, Clone)]
pub struct ScrapeOptions {
    /// The exporter, e.g. `http://127.0.0.1:9404/metrics`.
    pub metrics_url: String,
    pub interval: Duration,
}

/// Scrapes and reports every interval until the process stops; failures are logged and the
/// next interval tries again (the allowlist work is never affected).
pub async fn run(options: ScrapeOptions, server: String, token: String, broker_id: Option<String>) {
    let client = match reqwest::Client::builder().timeout(Duration::from_secs(10)).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the metering HTTP client; usage is not reported");
            return;
        }
    };
    let mut ticker = tokio::time::interval(options.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match once(&client, &options, &server, &token, broker_id.as_deref()).await {
            Ok(n) => tracing::debug!(counters = n, "usage reported"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "usage scrape or report failed; retrying next interval"),
        }
    }
}

async fn once(
    client: &reqwest::Client,
    options: &ScrapeOptions,
    server: &str,
    token: &str,
    broker_id: Option<&str>,
) -> anyhow::Result<usize> {
    let scraped_at_ms = crate::clock::now_ms();
    let response = client.get(&options.metrics_url).send().await.context("scraping the broker's counters")?;
    if !response.status().is_success() {
        bail!("the exporter answered {}", response.status());
    }
    let text = response.text().await.context("reading the broker's counters")?;
    let counters = parse_exposition(&text);
    let n = counters.len();
    let report = UsageReport {
        broker_id: broker_id.map(str::to_owned),
        scraped_at_ms,
        broker_started_at_ms: parse_started_at(&text),
        counters,
    };
    let response = client
        .post(format!("{server}/api/v1/agent/usage"))
        .bearer_auth(token)
        .json(&report)
        .send()
        .await
        .context("reporting usage")?;
    if !response.status().is_success() {
        bail!("usage report refused with {}: {}", response.status(), response.text().await.unwrap_or_default());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tenant_topics_counters_only() {
        let text = "\
# HELP kafka_server_brokertopicmetrics_bytesoutpersec_total Attribute exposed for management
# TYPE kafka_server_brokertopicmetrics_bytesoutpersec_total counter
kafka_server_brokertopicmetrics_bytesoutpersec_total{topic=\"c83\"} 1049.0
kafka_server_brokertopicmetrics_bytesoutpersec_total{topic=\"__consumer_offsets\"} 77.0
kafka_server_brokertopicmetrics_bytesoutpersec_total{topic=\"c83_waf\"} 1.2345678E7
kafka_server_brokertopicmetrics_bytesinpersec_total{topic=\"c83\"} 2098.0
kafka_server_brokertopicmetrics_messagesinpersec_total{topic=\"c83\"} 100.0
kafka_server_brokertopicmetrics_messagesinpersec_total{topic=\"c083\"} 100.0
jvm_memory_used_bytes{area=\"heap\"} 1.0E8
kafka_server_app_info_start_time_ms{id=\"1\"} 1.764777600123E12
";
        let got: Vec<(String, String, i64)> =
            parse_exposition(text).into_iter().map(|c| (c.topic, c.counter, c.value)).collect();
        let want = [
            ("c83", "bytes_in", 2098),
            ("c83", "bytes_out", 1049),
            ("c83", "records_in", 100),
            ("c83_waf", "bytes_out", 12_345_678),
        ];
        let want: Vec<(String, String, i64)> =
            want.iter().map(|(t, c, v)| ((*t).to_owned(), (*c).to_owned(), *v)).collect();
        assert_eq!(got, want);
        assert_eq!(parse_started_at(text), Some(1_764_777_600_123));
        assert_eq!(parse_started_at("kafka_server_app_info_start_time_ms 0.0\n"), None);
        assert_eq!(parse_started_at("jvm_memory_used_bytes 1.0\n"), None);
    }
}

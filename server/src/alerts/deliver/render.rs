//! The body each channel kind receives for a [`Message`]. Bodies are rendered once, when the
//! message is queued, so every retry sends the same bytes (and the same signature input).
//!
//! A message lists at most [`MAX_LISTED`] instances and counts the rest. For one instance the
//! message's top-level fields are that instance's; for a group they describe the group: the
//! labels every instance shares, the fingerprint of the rule and those common labels, the
//! earliest start, the latest end and the largest value.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::ChannelKind;
use crate::alerts::{Instance, MAX_LISTED, Message, Status, fingerprint};
use crate::clock::{rfc3339, rfc3339_ms};

/// How long an Alertmanager keeps a pushed firing alert without hearing of it again: rules
/// feeding `alertmanager_api` channels repeat well within this (4 h by default).
pub const ALERTMANAGER_HOLD_SECS: i64 = 24 * 3600;

/// A rendered delivery: the event type (`alert.firing`, `alert.resolved`, `alert.test`) and the
/// JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub event_type: &'static str,
    pub body: String,
}

/// The event type of a message.
pub fn event_type(message: &Message) -> &'static str {
    match (message.test, message.status) {
        (true, _) => "alert.test",
        (false, Status::Firing) => "alert.firing",
        (false, Status::Resolved) => "alert.resolved",
    }
}

/// Renders `message` for a channel of `kind` named `receiver`.
pub fn render(kind: ChannelKind, message: &Message, receiver: &str) -> Rendered {
    let body = match kind {
        ChannelKind::Webhook => webhook(message),
        ChannelKind::Slack => slack(message),
        ChannelKind::Alertmanager => alertmanager(message, receiver),
        ChannelKind::AlertmanagerApi => alertmanager_api(message),
    };
    Rendered { event_type: event_type(message), body: body.to_string() }
}

/// What a group of instances has in common.
struct Group {
    fingerprint: String,
    labels: BTreeMap<String, String>,
    starts_at: i64,
    ends_at: Option<i64>,
    value: f64,
}

fn group(message: &Message) -> Group {
    let instances = &message.instances;
    if let [one] = instances.as_slice() {
        return Group {
            fingerprint: one.fingerprint.clone(),
            labels: one.labels.clone(),
            starts_at: one.starts_at,
            ends_at: one.ends_at,
            value: one.value,
        };
    }
    let labels = common_labels(instances);
    Group {
        fingerprint: fingerprint(message.rule_id, &labels),
        starts_at: instances.iter().map(|i| i.starts_at).min().unwrap_or(message.timestamp_ms / 1000),
        ends_at: instances.iter().filter_map(|i| i.ends_at).max(),
        value: instances.iter().map(|i| i.value).fold(0.0, f64::max),
        labels,
    }
}

/// The labels with the same value in every instance.
fn common_labels(instances: &[Instance]) -> BTreeMap<String, String> {
    let Some((first, rest)) = instances.split_first() else { return BTreeMap::new() };
    first
        .labels
        .iter()
        .filter(|(k, v)| rest.iter().all(|i| i.labels.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn listed(message: &Message) -> (&[Instance], usize) {
    let n = message.instances.len().min(MAX_LISTED);
    (&message.instances[..n], message.instances.len() - n)
}

/// "+N other addresses" when the instances are client addresses, "+N others" otherwise.
pub fn more_text(message: &Message, more: usize) -> String {
    let addresses = message.instances.iter().all(|i| i.labels.contains_key("client_ip"));
    let noun = match (addresses, more) {
        (true, 1) => "other address",
        (true, _) => "other addresses",
        (false, 1) => "other",
        (false, _) => "others",
    };
    format!("+{more} {noun}")
}

fn webhook(message: &Message) -> Value {
    let g = group(message);
    let (shown, more) = listed(message);
    let instances: Vec<Value> = shown
        .iter()
        .map(|i| {
            json!({
                "fingerprint": i.fingerprint,
                "labels": i.labels,
                "value": i.value,
                "starts_at": rfc3339(i.starts_at),
                "ends_at": i.ends_at.map(rfc3339),
            })
        })
        .collect();
    json!({
        "type": event_type(message),
        "timestamp": rfc3339_ms(message.timestamp_ms),
        "data": {
            "fingerprint": g.fingerprint,
            "tenant": message.tenant_id,
            "rule": {"id": message.rule_id, "name": message.rule_name, "kind": message.rule_kind},
            "status": message.status,
            "severity": message.severity,
            "summary": message.summary,
            "starts_at": rfc3339(g.starts_at),
            "ends_at": g.ends_at.map(rfc3339),
            "value": g.value,
            "labels": g.labels,
            "dashboard_url": message.dashboard_url,
            "instances": instances,
            "more": more,
        }
    })
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(max - 1).collect::<String>())
    }
}

fn slack(message: &Message) -> Value {
    let (shown, more) = listed(message);
    let state = match (message.test, message.status) {
        (true, _) => "Test",
        (false, Status::Firing) => "Firing",
        (false, Status::Resolved) => "Resolved",
    };
    let title = cut(&format!("{state}: {}", message.rule_name), 150);
    let lines: Vec<String> = shown
        .iter()
        .map(|i| {
            let labels: Vec<String> = i.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            cut(&format!("• `{}` — {}", mrkdwn(&labels.join(" ")), i.value), 140)
        })
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": title}}),
        json!({"type": "section", "text": {"type": "mrkdwn",
            "text": cut(&format!("*{}* · {}", mrkdwn(&message.severity), mrkdwn(&message.summary)), 3000)}}),
    ];
    if !lines.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": lines.join("\n")}}));
    }
    if more > 0 {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more_text(message, more)}]}));
    }
    blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
        "text": format!("<{}|Open in outflow>", message.dashboard_url.replace('|', "%7C").replace('>', "%3E"))}}));
    json!({"text": format!("[{}] {}: {}", state.to_uppercase(), message.rule_name, message.summary), "blocks": blocks})
}

/// Labels as Alertmanager sees them: the instance's, with the rule's name as `alertname`.
fn am_labels(message: &Message, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = labels.clone();
    out.insert("alertname".into(), message.rule_name.clone());
    out.insert("severity".into(), message.severity.clone());
    out.insert("rule_kind".into(), message.rule_kind.clone());
    if let Some(tenant) = message.tenant_id {
        out.insert("tenant".into(), tenant.to_string());
    }
    out
}

fn am_status(message: &Message, instance: &Instance) -> &'static str {
    if message.status == Status::Resolved || instance.ends_at.is_some() { "resolved" } else { "firing" }
}

/// The Alertmanager webhook (version 4) body.
fn alertmanager(message: &Message, receiver: &str) -> Value {
    let (shown, more) = listed(message);
    let common = am_labels(message, &common_labels(&message.instances));
    let annotations = json!({"summary": message.summary});
    let alerts: Vec<Value> = shown
        .iter()
        .map(|i| {
            json!({
                "status": am_status(message, i),
                "labels": am_labels(message, &i.labels),
                "annotations": annotations,
                "startsAt": rfc3339(i.starts_at),
                // Alertmanager's "not yet ended".
                "endsAt": i.ends_at.map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339),
                "generatorURL": message.dashboard_url,
                "fingerprint": i.fingerprint,
            })
        })
        .collect();
    let status = if message.status == Status::Resolved { "resolved" } else { "firing" };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname={:?}, rule_id=\"{}\"}}", message.rule_name, message.rule_id),
        "truncatedAlerts": more,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": message.rule_name},
        "commonLabels": common,
        "commonAnnotations": annotations,
        "externalURL": message.dashboard_url,
        "alerts": alerts,
    })
}

/// The body POSTed to an Alertmanager's `/api/v2/alerts`: every instance (Alertmanager groups
/// them itself), resolved ones with their end, firing ones held for [`ALERTMANAGER_HOLD_SECS`]
/// (repeat messages renew them).
fn alertmanager_api(message: &Message) -> Value {
    let now = message.timestamp_ms / 1000;
    let alerts: Vec<Value> = message
        .instances
        .iter()
        .map(|i| {
            let ends_at = match (message.status, i.ends_at) {
                (_, Some(end)) => end,
                (Status::Resolved, None) => now,
                (Status::Firing, None) => now + ALERTMANAGER_HOLD_SECS,
            };
            json!({
                "labels": am_labels(message, &i.labels),
                "annotations": {"summary": message.summary},
                "startsAt": rfc3339(i.starts_at),
                "endsAt": rfc3339(ends_at),
                "generatorURL": message.dashboard_url,
            })
        })
        .collect();
    Value::Array(alerts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(addresses: usize, status: Status) -> Message {
        let instances = (0..addresses)
            .map(|n| {
                let labels: BTreeMap<String, String> = [
                    ("client_ip".to_owned(), format!("198.51.100.{n}")),
                    ("host".to_owned(), "www.acme.example".to_owned()),
                ]
                .into();
                Instance {
                    fingerprint: fingerprint(7, &labels),
                    labels,
                    value: 100.0 + n as f64,
                    starts_at: 1_700_000_000 + n as i64,
                    ends_at: (status == Status::Resolved).then_some(1_700_000_900),
                }
            })
            .collect();
        Message {
            status,
            tenant_id: Some(83),
            rule_id: 7,
            rule_name: "SQL-injection burst".into(),
            rule_kind: "waf_burst".into(),
            severity: "critical".into(),
            summary: "120 CRITICAL WAF events in 5 min".into(),
            instances,
            dashboard_url: "https://outflow.example/tenants/83/alerts".into(),
            timestamp_ms: 1_700_000_100_000,
            test: false,
        }
    }

    fn body(kind: ChannelKind, m: &Message) -> Value {
        serde_json::from_str(&render(kind, m, "ops").body).unwrap()
    }

    #[test]
    fn a_webhook_of_one_instance_carries_that_instance() {
        let m = message(1, Status::Firing);
        let b = body(ChannelKind::Webhook, &m);
        assert_eq!(b["type"], "alert.firing");
        assert_eq!(b["timestamp"], "2023-11-14T22:15:00.000Z");
        let d = &b["data"];
        assert_eq!(d["fingerprint"], m.instances[0].fingerprint);
        assert_eq!(d["tenant"], 83);
        assert_eq!(d["rule"], json!({"id": 7, "name": "SQL-injection burst", "kind": "waf_burst"}));
        assert_eq!(d["labels"]["client_ip"], "198.51.100.0");
        assert_eq!(d["starts_at"], "2023-11-14T22:13:20Z");
        assert_eq!(d["ends_at"], Value::Null);
        assert_eq!(d["value"], 100.0);
        assert_eq!(d["more"], 0);
        assert_eq!(d["instances"].as_array().unwrap().len(), 1);
        let r = message(1, Status::Resolved);
        assert_eq!(render(ChannelKind::Webhook, &r, "").event_type, "alert.resolved");
        assert_eq!(body(ChannelKind::Webhook, &r)["data"]["ends_at"], "2023-11-14T22:28:20Z");
        let t = Message { test: true, ..m };
        assert_eq!(body(ChannelKind::Webhook, &t)["type"], "alert.test");
    }

    #[test]
    fn a_webhook_of_forty_instances_lists_twenty_and_counts_the_rest() {
        let m = message(40, Status::Firing);
        let d = body(ChannelKind::Webhook, &m)["data"].clone();
        assert_eq!(d["instances"].as_array().unwrap().len(), 20);
        assert_eq!(d["more"], 20);
        // The group: the common label only, its own fingerprint, the largest value.
        assert_eq!(d["labels"], json!({"host": "www.acme.example"}));
        let common: BTreeMap<String, String> = [("host".to_owned(), "www.acme.example".to_owned())].into();
        assert_eq!(d["fingerprint"], fingerprint(7, &common));
        assert_eq!(d["value"], 139.0);
        assert_eq!(d["starts_at"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn slack_has_text_a_header_twenty_lines_the_rest_counted_and_a_link() {
        let b = body(ChannelKind::Slack, &message(40, Status::Firing));
        assert_eq!(b["text"], "[FIRING] SQL-injection burst: 120 CRITICAL WAF events in 5 min");
        let blocks = b["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "Firing: SQL-injection burst");
        assert_eq!(blocks[2]["text"]["text"].as_str().unwrap().lines().count(), 20);
        assert_eq!(blocks[3]["elements"][0]["text"], "+20 other addresses");
        assert!(blocks[4]["text"]["text"].as_str().unwrap().contains("<https://outflow.example/tenants/83/alerts|"));
        let one = body(ChannelKind::Slack, &message(1, Status::Resolved));
        assert_eq!(one["blocks"][0]["text"]["text"], "Resolved: SQL-injection burst");
        assert!(one["blocks"].as_array().unwrap().iter().all(|b| b["type"] != "context"));
        let mut hostile = message(1, Status::Firing);
        hostile.summary = "<!channel> & friends".into();
        assert!(
            body(ChannelKind::Slack, &hostile)["blocks"][1]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("&lt;!channel&gt; &amp;")
        );
    }

    #[test]
    fn more_counts_addresses_or_others() {
        let mut m = message(3, Status::Firing);
        assert_eq!(more_text(&m, 2), "+2 other addresses");
        assert_eq!(more_text(&m, 1), "+1 other address");
        m.instances[0].labels.remove("client_ip");
        assert_eq!(more_text(&m, 2), "+2 others");
        assert_eq!(more_text(&m, 1), "+1 other");
    }

    #[test]
    fn alertmanager_webhook_is_version_4_with_truncated_alerts() {
        let b = body(ChannelKind::Alertmanager, &message(40, Status::Firing));
        assert_eq!(b["version"], "4");
        assert_eq!(b["status"], "firing");
        assert_eq!(b["receiver"], "ops");
        assert_eq!(b["truncatedAlerts"], 20);
        assert_eq!(b["groupLabels"], json!({"alertname": "SQL-injection burst"}));
        assert_eq!(b["commonLabels"]["host"], "www.acme.example");
        assert_eq!(b["commonLabels"]["tenant"], "83");
        assert!(b["commonLabels"].get("client_ip").is_none());
        assert_eq!(b["commonAnnotations"]["summary"], "120 CRITICAL WAF events in 5 min");
        let alerts = b["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 20);
        assert_eq!(alerts[0]["status"], "firing");
        assert_eq!(alerts[0]["labels"]["alertname"], "SQL-injection burst");
        assert_eq!(alerts[0]["endsAt"], "0001-01-01T00:00:00Z");
        assert!(alerts[0]["fingerprint"].is_string() && alerts[0]["generatorURL"].is_string());
        assert!(b["groupKey"].as_str().unwrap().contains("rule_id=\"7\""));
        let r = body(ChannelKind::Alertmanager, &message(2, Status::Resolved));
        assert_eq!(r["status"], "resolved");
        assert_eq!(r["alerts"][0]["endsAt"], "2023-11-14T22:28:20Z");
    }

    #[test]
    fn alertmanager_api_pushes_alerts_ending_on_resolve() {
        let firing = body(ChannelKind::AlertmanagerApi, &message(40, Status::Firing));
        let alerts = firing.as_array().unwrap();
        assert_eq!(alerts.len(), 40);
        assert_eq!(alerts[0]["labels"]["alertname"], "SQL-injection burst");
        assert_eq!(alerts[0]["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(alerts[0]["endsAt"], rfc3339(1_700_000_100 + ALERTMANAGER_HOLD_SECS));
        let resolved = body(ChannelKind::AlertmanagerApi, &message(1, Status::Resolved));
        assert_eq!(resolved[0]["endsAt"], "2023-11-14T22:28:20Z");
        assert_eq!(resolved[0]["annotations"]["summary"], "120 CRITICAL WAF events in 5 min");
    }
}

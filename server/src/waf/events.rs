//! WAF events a person can read: the fields of one split record (ModSecurity v3 or 2.9, Coraza)
//! for the Streaming tab's table — client, rule, severity, message, request and host — and the
//! severity of each message for the summary.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// ModSecurity's severities are syslog levels: 0 is the most severe.
pub const SEVERITIES: [&str; 8] = ["EMERGENCY", "ALERT", "CRITICAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"];

/// One WAF event (a split record holds one message).
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct WafEvent {
    #[schema(example = "198.51.100.23")]
    pub client: Option<String>,
    #[schema(example = "942100")]
    pub rule_id: Option<String>,
    /// The syslog severity as a word (`CRITICAL`, `WARNING`, …).
    #[schema(example = "CRITICAL")]
    pub severity: Option<String>,
    #[schema(example = "SQL Injection Attack Detected via libinjection")]
    pub message: Option<String>,
    #[schema(example = "GET")]
    pub method: Option<String>,
    #[schema(example = "/search?q=1%27%20OR%201=1--")]
    pub uri: Option<String>,
    #[schema(example = "www.example.com")]
    pub host: Option<String>,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The syslog number of a severity word (`CRITICAL` → 2).
pub fn severity_number(word: &str) -> Option<usize> {
    SEVERITIES.iter().position(|s| *s == word)
}

/// A severity as a word: syslog numbers (`2`, `"2"`) become their names; words (Coraza may
/// write them) are kept, upper-cased.
pub fn severity_word(v: &Value) -> Option<String> {
    let raw = text(v)?;
    match raw.trim().parse::<usize>() {
        Ok(n) => SEVERITIES.get(n).map(|w| (*w).to_owned()),
        Err(_) if !raw.trim().is_empty() => Some(raw.trim().to_uppercase()),
        Err(_) => None,
    }
}

/// The messages of a record: ModSecurity v3 `.transaction.messages`, ModSecurity 2.9
/// `.audit_data.messages` (strings), Coraza `.messages`; one message (split) or an array
/// (unsplit).
fn messages(record: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let holders =
        [record.pointer("/transaction/messages"), record.pointer("/audit_data/messages"), record.get("messages")];
    for v in holders.into_iter().flatten() {
        match v {
            Value::Array(items) => out.extend(items.iter()),
            Value::Object(_) | Value::String(_) => out.push(v),
            _ => {}
        }
    }
    out
}

/// The value of tag `[name "value"]` in a ModSecurity 2.9 message string, e.g. `id` of
/// `Warning. Pattern match ... [id "942100"] [msg "SQL Injection"]`. Tags come after the free
/// text, so the last one counts; `\"` and `\\` in a value are ModSecurity's escapes.
pub fn modsecurity2_tag(message: &str, name: &str) -> Option<String> {
    let opening = format!("[{name} \"");
    let start = message.rfind(&opening)? + opening.len();
    let mut value = String::new();
    let mut chars = message[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                escaped @ ('"' | '\\') => value.push(escaped),
                other => value.extend(['\\', other]),
            },
            '"' => return Some(value),
            c => value.push(c),
        }
    }
    None
}

/// Rule id, severity and message text of one message, in any of the shapes.
fn message_fields(m: &Value) -> (Option<String>, Option<String>, Option<String>) {
    if let Value::String(text) = m {
        let severity = modsecurity2_tag(text, "severity").and_then(|s| severity_word(&Value::String(s)));
        return (modsecurity2_tag(text, "id"), severity, modsecurity2_tag(text, "msg"));
    }
    let rule = m.pointer("/details/ruleId").or_else(|| m.pointer("/data/id")).and_then(text);
    let severity = m.pointer("/details/severity").or_else(|| m.pointer("/data/severity")).and_then(severity_word);
    let message = m.get("message").and_then(text).or_else(|| m.pointer("/data/msg").and_then(text));
    (rule, severity, message)
}

/// A rule id or severity as ModSecurity (strings) or Coraza (numbers) writes it.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Scalar<'a> {
    #[serde(borrow)]
    Text(std::borrow::Cow<'a, str>),
    Number(serde_json::Number),
    Other(serde::de::IgnoredAny),
}

impl Scalar<'_> {
    fn text(&self) -> Option<String> {
        match self {
            Scalar::Text(t) => Some(t.clone().into_owned()),
            Scalar::Number(n) => Some(n.to_string()),
            Scalar::Other(_) => None,
        }
    }
}

#[derive(serde::Deserialize)]
struct Details<'a> {
    #[serde(borrow, rename = "ruleId", alias = "id")]
    rule_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    severity: Option<Scalar<'a>>,
}

#[derive(serde::Deserialize)]
struct MessageFacts<'a> {
    #[serde(borrow)]
    details: Option<Details<'a>>,
    #[serde(borrow)]
    data: Option<Details<'a>>,
}

/// The rule id and severity word of one message's JSON (a v3 or Coraza object, or a 2.9
/// string), reading only those fields: what the splitter puts in its `waf-*` headers.
pub fn message_facts(message: &[u8]) -> (Option<String>, Option<String>) {
    if message.first() == Some(&b'"') {
        let Ok(text) = serde_json::from_slice::<String>(message) else { return (None, None) };
        let severity = modsecurity2_tag(&text, "severity").and_then(|s| severity_word(&Value::String(s)));
        return (modsecurity2_tag(&text, "id"), severity);
    }
    let Ok(m) = serde_json::from_slice::<MessageFacts<'_>>(message) else { return (None, None) };
    let facts = m.details.or(m.data);
    let rule = facts.as_ref().and_then(|d| d.rule_id.as_ref()).and_then(Scalar::text);
    let severity = facts
        .as_ref()
        .and_then(|d| d.severity.as_ref())
        .and_then(Scalar::text)
        .and_then(|s| severity_word(&Value::String(s)));
    (rule, severity)
}

/// A JSON string literal's text (the splitter's client span).
pub fn string_literal(raw: &[u8]) -> Option<String> {
    match raw {
        [b'"', inner @ .., b'"'] if !inner.contains(&b'\\') => std::str::from_utf8(inner).ok().map(str::to_owned),
        _ => serde_json::from_slice::<String>(raw).ok(),
    }
}

/// The rule ids of every message of `record`.
pub fn rule_ids(record: &Value) -> Vec<String> {
    messages(record).into_iter().filter_map(|m| message_fields(m).0).collect()
}

/// The client address of `record`.
/// ModSecurity v3 and Coraza write `.transaction.client_ip`, ModSecurity 2.9
/// `.transaction.remote_address`.
pub fn client(record: &Value) -> Option<String> {
    record.pointer("/transaction/client_ip").or_else(|| record.pointer("/transaction/remote_address")).and_then(text)
}

/// The severities of every message of `record`.
pub fn severities(record: &Value) -> Vec<String> {
    messages(record).into_iter().filter_map(|m| message_fields(m).1).collect()
}

/// The readable fields of `record` (its first message when it holds several).
pub fn event(record: &Value) -> WafEvent {
    let (rule_id, severity, message) = messages(record).first().map(|m| message_fields(m)).unwrap_or_default();
    // v3 and Coraza: `.transaction.request` with method, uri and headers; 2.9: a top-level
    // `.request` with `request_line` ("GET /path HTTP/1.1") and headers.
    let request = record.pointer("/transaction/request").or_else(|| record.get("request"));
    let host = request.and_then(|r| r.get("headers")).and_then(Value::as_object).and_then(|headers| {
        headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("host")).and_then(|(_, v)| text(v))
    });
    let line = request.and_then(|r| r.get("request_line")).and_then(Value::as_str).map(|l| {
        let mut words = l.split_whitespace();
        (words.next().map(str::to_owned), words.next().map(str::to_owned))
    });
    let (line_method, line_uri) = line.unwrap_or_default();
    WafEvent {
        client: client(record),
        rule_id,
        severity,
        message,
        method: request.and_then(|r| r.get("method")).and_then(text).or(line_method),
        uri: request.and_then(|r| r.get("uri")).and_then(text).or(line_uri),
        host,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_split_modsecurity_record_reads_as_one_event() {
        let record = json!({"transaction": {"client_ip": "203.0.113.7", "request": {"method": "GET",
            "uri": "/search?q=1", "headers": {"host": "www.example.com"}},
            "messages": {"message": "SQL Injection", "details": {"ruleId": "942100", "severity": "2"}}}});
        assert_eq!(
            event(&record),
            WafEvent {
                client: Some("203.0.113.7".into()),
                rule_id: Some("942100".into()),
                severity: Some("CRITICAL".into()),
                message: Some("SQL Injection".into()),
                method: Some("GET".into()),
                uri: Some("/search?q=1".into()),
                host: Some("www.example.com".into()),
            }
        );
    }

    #[test]
    fn coraza_numbers_words_and_missing_fields() {
        let record = json!({"transaction": {"client_ip": "2001:db8::1"},
            "messages": [{"message": "XSS", "data": {"id": 941100, "severity": 4}}, {"data": {"id": 1, "severity": "critical"}}]});
        let e = event(&record);
        assert_eq!(e.rule_id.as_deref(), Some("941100"));
        assert_eq!(e.severity.as_deref(), Some("WARNING"));
        assert_eq!(e.host, None);
        assert_eq!(severities(&record), ["WARNING", "CRITICAL"]);
        assert_eq!(severity_word(&json!(9)), None);
        assert_eq!(event(&json!("not an object")), WafEvent::default());
    }

    #[test]
    fn a_split_modsecurity_2_9_record_reads_its_message_string_tags() {
        let text = r#"Warning. Pattern match "(?i)\\b(or|and)\\b" at ARGS:q. [file "/etc/crs/REQUEST-942.conf"] [line "45"] [id "942100"] [msg "SQL Injection Attack Detected via \"libinjection\""] [data "Matched Data: [id \"1\"] found"] [severity "CRITICAL"] [tag "attack-sqli"]"#;
        let record = json!({
            "transaction": {"remote_address": "203.0.113.7", "remote_port": 51234},
            "request": {"request_line": "POST /login?next=%2F HTTP/1.1", "headers": {"Host": "shop.example.com"}},
            "audit_data": {"messages": text}
        });
        let e = event(&record);
        assert_eq!(e.client.as_deref(), Some("203.0.113.7"));
        assert_eq!(e.method.as_deref(), Some("POST"));
        assert_eq!(e.uri.as_deref(), Some("/login?next=%2F"));
        assert_eq!(e.host.as_deref(), Some("shop.example.com"));
        assert_eq!(e.rule_id.as_deref(), Some("942100"));
        assert_eq!(e.severity.as_deref(), Some("CRITICAL"));
        assert_eq!(e.message.as_deref(), Some("SQL Injection Attack Detected via \"libinjection\""));
        let unsplit = json!({"audit_data": {"messages": [text, "Access denied with code 403. [id \"949110\"] [severity \"2\"]"]}});
        assert_eq!(severities(&unsplit), ["CRITICAL", "CRITICAL"]);
        assert_eq!(modsecurity2_tag("[msg \"unterminated", "msg"), None);
        assert_eq!(modsecurity2_tag("no tags", "id"), None);
        let quoted = serde_json::to_vec(&Value::String(text.to_owned())).unwrap();
        assert_eq!(message_facts(&quoted), (Some("942100".into()), Some("CRITICAL".into())));
    }

    #[test]
    fn message_facts_read_only_rule_and_severity() {
        let v3 = br#"{"message":"SQLi","details":{"match":"x","ruleId":"942100","severity":"2","tags":["a"]}}"#;
        assert_eq!(message_facts(v3), (Some("942100".into()), Some("CRITICAL".into())));
        let coraza = br#"{"actionset":{},"data":{"id":920350,"severity":4,"msg":"Numeric host"}}"#;
        assert_eq!(message_facts(coraza), (Some("920350".into()), Some("WARNING".into())));
        assert_eq!(message_facts(br#"{"details":{"ruleId":{"odd":1}}}"#), (None, None));
        assert_eq!(message_facts(b"[1]"), (None, None));
        assert_eq!(string_literal(br#""203.0.113.9""#).as_deref(), Some("203.0.113.9"));
        assert_eq!(string_literal(br#""a\u0062""#).as_deref(), Some("ab"));
    }
}

//! Alert rules through the API (in-process, on SQLite and PostgreSQL): the defaults a tenant
//! starts with, validation naming the field, the per-tenant limit, replace, mute, delete, the
//! operators' rules; and the evaluator's database rules (credential expiry, unapplied
//! allowlists) going pending → firing → resolved with their history.

use std::time::Duration;

use outflow_testkit::{Tenants, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const RULES: &str = "/api/v1/tenants/83/alert-rules";

async fn app() -> TestApp {
    let app = spawn_app().await;
    app.create_tenant(83, "Acme").await;
    app.create_tenant(84, "Globex").await;
    app
}

fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

#[tokio::test]
async fn a_new_tenant_starts_with_credential_and_stalled_consumer_rules() {
    let app = app().await;
    let (status, rules) = app.op(Method::GET, RULES, None).await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    let kinds: Vec<&str> = rules.as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["credential_expiring", "group_stalled"]);
    let stalled = &rules[1];
    assert_eq!(stalled["is_default"], true);
    assert_eq!(stalled["params"], json!({"group": "*", "for_secs": 900}));
    assert_eq!(stalled["channels"], json!([]));
    assert_eq!(rules[0]["params"]["days"], json!([30, 7]));
    assert_eq!(rules[0]["repeat_secs"], 14400);
}

#[tokio::test]
async fn rules_are_validated_field_by_field() {
    let app = app().await;
    let (s, b) = app.op(Method::POST, RULES, Some(json!({"kind": "waf_burst", "name": "SQLi", "threshold": 50}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["params"]["threshold"], 50);
    assert_eq!(b["params"]["window_secs"], 300);
    assert_eq!(b["params"]["min_severity"], "CRITICAL");
    assert_eq!(b["params"]["exclude_rule_ids"], json!(["949*", "959*", "980*"]));

    let cases = [
        (json!({"kind": "meteor", "name": "x"}), "kind"),
        (json!({"kind": "waf_burst", "name": ""}), "name"),
        (json!({"kind": "waf_burst", "name": "x", "window_secs": 5}), "window_secs"),
        (json!({"kind": "waf_burst", "name": "x", "window_secs": 4000}), "window_secs"),
        (json!({"kind": "waf_burst", "name": "x", "threshold": "many"}), "threshold"),
        (json!({"kind": "waf_burst", "name": "x", "group_by": "country"}), "group_by"),
        (json!({"kind": "waf_burst", "name": "x", "min_severity": "LOUD"}), "min_severity"),
        (json!({"kind": "waf_burst", "name": "x", "rule_ids": ["94x"]}), "rule_ids"),
        (json!({"kind": "waf_burst", "name": "x", "colour": "red"}), "colour"),
        (json!({"kind": "waf_burst", "name": "x", "repeat_secs": 60}), "repeat_secs"),
        (json!({"kind": "waf_burst", "name": "x", "channels": [999]}), "channels"),
        (json!({"kind": "lag_above", "name": "x", "group": "c84_spy"}), "group"),
        (json!({"kind": "credential_expiring", "name": "x", "days": [0]}), "days"),
        (json!({"kind": "agent_stale", "name": "x"}), "kind"),
    ];
    for (body, field) in cases {
        let (s, b) = app.op(Method::POST, RULES, Some(body.clone())).await;
        assert_invalid(s, &b, field);
    }
    // Operators' routes take only cluster-wide kinds.
    let (s, b) = app.op(Method::POST, "/api/v1/alert-rules", Some(json!({"kind": "waf_burst", "name": "x"}))).await;
    assert_invalid(s, &b, "kind");
    let (s, b) =
        app.op(Method::POST, "/api/v1/alert-rules", Some(json!({"kind": "agent_stale", "name": "Agents"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    for (body, field) in [
        (json!({"kind": "dlq_growth", "name": "x", "window_secs": 5}), "window_secs"),
        (json!({"kind": "dlq_growth", "name": "x", "topic": "a b"}), "topic"),
    ] {
        let (s, b) = app.op(Method::POST, "/api/v1/alert-rules", Some(body)).await;
        assert_invalid(s, &b, field);
    }
    let (s, b) = app.op(Method::POST, RULES, Some(json!({"kind": "dlq_growth", "name": "x"}))).await;
    assert_invalid(s, &b, "kind");
    let (_, ops) = app.op(Method::GET, "/api/v1/alert-rules", None).await;
    assert_eq!(ops.as_array().unwrap().len(), 1);
    assert_eq!(ops[0]["tenant_id"], Value::Null);
}

#[tokio::test]
async fn twenty_rules_per_tenant_replace_mute_and_delete() {
    let app = app().await;
    for i in 0..18 {
        let (s, b) = app.op(Method::POST, RULES, Some(json!({"kind": "lag_above", "name": format!("lag {i}")}))).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) = app.op(Method::POST, RULES, Some(json!({"kind": "lag_above", "name": "one too many"}))).await;
    assert_invalid(s, &b, "kind");
    assert!(b["error"]["message"].as_str().unwrap().contains("20"), "{b}");
    // Tenant 84 has its own 20.
    let (s, _) =
        app.op(Method::POST, "/api/v1/tenants/84/alert-rules", Some(json!({"kind": "lag_above", "name": "x"}))).await;
    assert_eq!(s, StatusCode::CREATED);

    let (_, rules) = app.op(Method::GET, RULES, None).await;
    let id = rules[2]["id"].as_i64().unwrap();
    let path = format!("{RULES}/{id}");
    let (s, b) = app
        .op(Method::PUT, &path, Some(json!({"kind": "lag_above", "name": "Behind", "threshold": 5, "for_secs": 0})))
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["name"].as_str(), b["params"]["threshold"].as_i64()), (Some("Behind"), Some(5)));
    let (s, b) = app.op(Method::PUT, &path, Some(json!({"kind": "waf_burst", "name": "x"}))).await;
    assert_invalid(s, &b, "kind");
    // Another tenant's rule is not found under this tenant.
    let (s, _) = app.op(Method::GET, &format!("/api/v1/tenants/84/alert-rules/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, b) = app.op(Method::PUT, &format!("{path}/mute"), Some(json!({"for_secs": 3600}))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["muted"], true);
    assert!(b["muted_until"].as_str().is_some());
    let (s, b) = app.op(Method::PUT, &format!("{path}/mute"), Some(json!({"until": "2001-01-01T00:00:00Z"}))).await;
    assert_invalid(s, &b, "until");
    let (s, b) = app.op(Method::DELETE, &format!("{path}/mute"), None).await;
    assert_eq!((s, b["muted"].as_bool()), (StatusCode::OK, Some(false)));

    let (s, _) = app.op(Method::DELETE, &path, None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.op(Method::GET, &path, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = app.op(Method::GET, "/api/v1/tenants/83/alerts?state=loud", None).await;
    assert_invalid(s, &b, "query");
    let (s, b) = app.op(Method::GET, "/api/v1/tenants/83/alert-events?limit=0", None).await;
    assert_invalid(s, &b, "limit");
}

async fn signed_in(app: &TestApp) -> (reqwest::Client, String) {
    let client = outflow_testkit::browser();
    let page = client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let csrf = outflow_testkit::csrf_of(&page);
    let resp =
        client.post(app.url("/login")).form(&[("csrf", csrf.as_str()), ("token", &app.operator)]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page = client.get(app.url("/tenants")).send().await.unwrap().text().await.unwrap();
    (client, outflow_testkit::csrf_of(&page))
}

#[tokio::test]
async fn the_alerts_tab_adds_rules_from_presets_mutes_and_deletes_them() {
    let app = app().await;
    let (client, csrf) = signed_in(&app).await;
    let get = |path: &'static str| {
        let client = client.clone();
        let url = app.url(path);
        async move {
            let r = client.get(url).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, page) = get("/tenants/83/streaming").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains(r#"href="/tenants/83/alerts""#), "the Streaming tab links to Alerts");
    let (s, page) = get("/tenants/83/alerts").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Credential expiring") && page.contains("Consumer stalled"), "{page}");
    assert!(page.contains("Nothing firing or pending."));

    let post = |path: String, form: Vec<(&'static str, String)>| {
        let client = client.clone();
        let url = app.url(&path);
        async move { client.post(url).form(&form).send().await.unwrap() }
    };
    let r = post("/tenants/83/alerts/rules".into(), vec![("csrf", csrf.clone()), ("preset", "scanner".into())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, rules) = app.op(Method::GET, RULES, None).await;
    let scanner =
        rules.as_array().unwrap().iter().find(|r| r["name"] == "One scanner address: 50/min").unwrap().clone();
    assert_eq!(scanner["params"]["group_by"], "client_ip");
    assert_eq!(scanner["params"]["window_secs"], 60);
    let id = scanner["id"].as_i64().unwrap();

    let r =
        post(format!("/tenants/83/alerts/rules/{id}/mute"), vec![("csrf", csrf.clone()), ("hours", "1".into())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = get("/tenants/83/alerts").await;
    assert!(page.contains("Rule muted") || page.contains(r#"class="badge muted""#), "{page}");
    assert!(page.contains(r#"class="badge muted""#));
    let r = post(format!("/tenants/83/alerts/rules/{id}/delete"), vec![("csrf", csrf.clone())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, _) = app.op(Method::GET, &format!("{RULES}/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let r = post("/tenants/83/alerts/rules".into(), vec![("csrf", csrf.clone()), ("preset", "meteor".into())]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("preset"));
    let r =
        post("/tenants/83/alerts/rules".into(), vec![("csrf", "forged".into()), ("preset", "scanner".into())]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// An app evaluating every 200 ms without grouping, allowed to deliver to loopback.
async fn evaluating_app() -> TestApp {
    let app = outflow_testkit::spawn_app_with(|c| {
        c.alerts.evaluate_interval_ms = 200;
        c.alerts.group_wait_secs = 0;
        c.alerts.allow_destinations = vec!["127.0.0.1/32".into()];
        c.credentials.validity_days = 20;
    })
    .await;
    app.create_and_activate(83, "Acme").await;
    app
}

async fn webhook(app: &TestApp, receiver: &outflow_testkit::receiver::Receiver) -> i64 {
    let (s, b) = app
        .op(
            Method::POST,
            "/api/v1/tenants/83/alert-channels",
            Some(json!({"kind": "webhook", "name": "ops", "url": format!("{}/hook", receiver.url)})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_i64().unwrap()
}

async fn alerts_of(app: &TestApp, rule: i64, state: &str) -> Vec<Value> {
    let (_, all) = app.op(Method::GET, &format!("/api/v1/tenants/83/alerts?state={state}"), None).await;
    all.as_array().unwrap().iter().filter(|a| a["rule_id"] == rule).cloned().collect()
}

#[tokio::test]
async fn an_expiring_credential_fires_and_resolves_through_the_evaluator() {
    let app = evaluating_app().await;
    let receiver = outflow_testkit::receiver::Receiver::start().await;
    let ch = webhook(&app, &receiver).await;
    // The credential is valid for 20 days: "within 30 days" holds at once.
    let (s, rule) = app
        .op(
            Method::POST,
            RULES,
            Some(json!({"kind": "credential_expiring", "name": "Expiry", "days": [30], "channels": [ch]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let id = rule["id"].as_i64().unwrap();
    let (firing, _) = outflow_testkit::eventually(Duration::from_secs(20), "credential_expiring firing", async || {
        let f = alerts_of(&app, id, "firing").await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(firing[0]["labels"], json!({"credential": "c83.1", "within_days": "30"}));
    assert!(firing[0]["value"].as_f64().unwrap() > 19.0);
    let (got, _) = outflow_testkit::eventually(Duration::from_secs(20), "the firing delivered", async || {
        let r = receiver.received();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(got[0].json()["type"], "alert.firing", "{}", got[0].body);

    // Rotation: c83.1 is no longer the newest credential, its alert resolves (c83.2, valid
    // for 20 days too, fires in its place).
    let (s, b) = app.op(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    outflow_testkit::eventually(Duration::from_secs(20), "c83.1 resolved, c83.2 firing", async || {
        let firing = alerts_of(&app, id, "firing").await;
        let resolved = alerts_of(&app, id, "resolved").await;
        (firing.len() == 1
            && firing[0]["labels"]["credential"] == "c83.2"
            && resolved.iter().any(|a| a["labels"]["credential"] == "c83.1"))
        .then_some(())
    })
    .await;

    // Only "within 10 days" now: the 30-day instance resolves.
    let (s, b) = app
        .op(
            Method::PUT,
            &format!("{RULES}/{id}"),
            Some(json!({"kind": "credential_expiring", "name": "Expiry", "days": [10], "channels": [ch]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    outflow_testkit::eventually(Duration::from_secs(20), "both resolves delivered", async || {
        (receiver.received().iter().filter(|r| r.json()["type"] == "alert.resolved").count() == 2).then_some(())
    })
    .await;
    assert!(alerts_of(&app, id, "firing").await.is_empty());
    let (_, events) = app.op(Method::GET, "/api/v1/tenants/83/alert-events", None).await;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["rule_id"] == id)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // Per credential: pending, firing, resolved; c83.1's resolve and c83.2's start share a pass.
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(sorted, ["firing", "firing", "pending", "pending", "resolved", "resolved"], "{kinds:?}");
    assert_eq!(kinds[0], "resolved");
    // Exactly two firings and two resolves, though the evaluator ran many times.
    let types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.json()["type"].as_str().unwrap(),
                r.header("webhook-id").unwrap_or(""),
                r.json()["data"]["labels"]
            )
        })
        .collect();
    assert_eq!(types.iter().filter(|t| t.starts_with("alert.firing")).count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| t.starts_with("alert.resolved")).count(), 2, "{types:?}");
}

#[tokio::test]
async fn a_broker_behind_on_the_allowlist_fires_until_it_catches_up() {
    let app = evaluating_app().await;
    let (s, b) = app.op(Method::POST, "/api/v1/tenants/83/allowlist", Some(json!({"cidr": "198.51.100.7"}))).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let report = |version: i64| json!({"broker_id": "kafka-1", "version": version, "entries": 1});
    let (s, _) = app.call(Method::POST, "/api/v1/agent/status", Some(&app.agent.clone()), Some(report(0))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, rule) = app
        .op(Method::POST, RULES, Some(json!({"kind": "allowlist_unapplied", "name": "Unapplied", "for_secs": 1})))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rule}");
    let id = rule["id"].as_i64().unwrap();
    let (firing, _) = outflow_testkit::eventually(Duration::from_secs(20), "allowlist_unapplied firing", async || {
        let f = alerts_of(&app, id, "firing").await;
        (!f.is_empty()).then_some(f)
    })
    .await;
    assert_eq!(firing[0]["labels"], json!({"broker": "kafka-1"}));
    let version = b["added_version"].as_i64().or_else(|| b["version"].as_i64()).unwrap_or(1);
    let (s, _) =
        app.call(Method::POST, "/api/v1/agent/status", Some(&app.agent.clone()), Some(report(version.max(1)))).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    outflow_testkit::eventually(Duration::from_secs(20), "resolved once the broker caught up", async || {
        alerts_of(&app, id, "firing").await.is_empty().then_some(())
    })
    .await;
    let resolved = alerts_of(&app, id, "resolved").await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
}

#[tokio::test]
async fn the_alerts_tab_adds_a_channel_shows_its_secret_once_and_sends_a_test() {
    let app = evaluating_app().await;
    let receiver = outflow_testkit::receiver::Receiver::start().await;
    let (client, csrf) = signed_in(&app).await;
    let url = format!("{}/hook", receiver.url);
    let r = client
        .post(app.url("/tenants/83/alerts/channels"))
        .form(&[("csrf", csrf.as_str()), ("kind", "webhook"), ("name", "SOC"), ("url", url.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("whsec_"), "the secret is shown once");
    let again = client.get(app.url("/tenants/83/alerts")).send().await.unwrap().text().await.unwrap();
    assert!(!again.contains("whsec_"), "and never again");
    assert!(again.contains(r#"<option value="webhook">"#) && again.contains(r#"name="channels""#));
    let (_, channels) = app.op(Method::GET, "/api/v1/tenants/83/alert-channels", None).await;
    let ch = channels[0]["id"].as_i64().unwrap();

    let r = client
        .post(app.url(&format!("/tenants/83/alerts/channels/{ch}/test")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains(r#"data-test-status="200""#), "{page}");
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(receiver.received()[0].json()["type"], "alert.test");

    // A private destination is refused with the reason on the page.
    let r = client
        .post(app.url("/tenants/83/alerts/channels"))
        .form(&[("csrf", csrf.as_str()), ("kind", "webhook"), ("name", "x"), ("url", "https://10.0.0.1/hook")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("url"));

    let r = client
        .post(app.url(&format!("/tenants/83/alerts/channels/{ch}/delete")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, channels) = app.op(Method::GET, "/api/v1/tenants/83/alert-channels", None).await;
    assert_eq!(channels, json!([]));
}

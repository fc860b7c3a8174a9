//! Alert channels and delivery in process, against a receiver written here on 127.0.0.1 that
//! answers as each test scripts it (200, 500, 429 with `Retry-After`, 410, 400, slowly):
//! signatures checked independently with Python's `hmac`, retries under one `webhook-id`, 410
//! disabling the channel, one request in flight per channel, secret rotation, the SSRF guard's
//! 422s, the channel test, the deliveries API, and the Slack and Alertmanager bodies.

use std::collections::BTreeMap;
use std::time::Duration;

use outflow::alerts::deliver::{self, Tuning};
use outflow::alerts::{Instance, Message, Status, fingerprint};
use outflow::store::alert_channels;
use outflow_testkit::receiver::{Answer, Received, Receiver};
use outflow_testkit::{Tenants, TestApp, eventually, repo_root, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Retries within a second or so, timeouts after one; every request to 127.0.0.1 allowed.
fn fast(config: &mut outflow::Config) {
    config.alerts.allow_destinations = vec!["127.0.0.1/32".into()];
    config.alerts.delivery = Tuning {
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        give_up_after: Duration::from_secs(60),
        timeout: Duration::from_secs(1),
    };
}

async fn app(adjust: impl FnOnce(&mut outflow::Config)) -> TestApp {
    let app = spawn_app_with(adjust).await;
    app.create_tenant(83, "Acme").await;
    app.create_tenant(84, "Globex").await;
    app
}

const CHANNELS: &str = "/api/v1/tenants/83/alert-channels";

async fn add_channel(app: &TestApp, kind: &str, url: &str) -> Value {
    let (status, body) = app.op(Method::POST, CHANNELS, Some(json!({"kind": kind, "name": kind, "url": url}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn message(status: Status, addresses: usize) -> Message {
    let instances = (0..addresses)
        .map(|n| {
            let labels: BTreeMap<String, String> = [("client_ip".to_owned(), format!("198.51.100.{n}"))].into();
            Instance {
                fingerprint: fingerprint(1, &labels),
                labels,
                value: 120.0,
                starts_at: 1_700_000_000,
                ends_at: (status == Status::Resolved).then_some(1_700_000_600),
            }
        })
        .collect();
    Message {
        status,
        tenant_id: Some(83),
        rule_id: 1,
        rule_name: "SQL-injection burst".into(),
        rule_kind: "waf_burst".into(),
        severity: "critical".into(),
        summary: "120 CRITICAL WAF events in 5 min".into(),
        instances,
        dashboard_url: "http://outflow.example/tenants/83/alerts".into(),
        timestamp_ms: outflow::clock::now_ms(),
        test: false,
    }
}

/// Queues `message` for channel `id` as the evaluator does: in a transaction, then the signal.
async fn queue(app: &TestApp, id: i64, message: &Message) -> Vec<i64> {
    let store = &app.state.store;
    let channel = alert_channels::by_id(store, id).await.unwrap().unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    let ids = deliver::enqueue(&mut tx, &[channel], message, outflow::clock::now_ms()).await.unwrap();
    tx.commit().await.unwrap();
    store.signals().alert_deliveries_queued();
    ids
}

async fn deliveries(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app.op(Method::GET, &format!("/api/v1/tenants/83/alert-deliveries{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["deliveries"].as_array().unwrap().clone()
}

/// Waits until delivery `id` is no longer pending; returns it.
async fn finished(app: &TestApp, id: i64) -> Value {
    eventually(Duration::from_secs(30), &format!("delivery {id} finished"), async || {
        deliveries(app, "").await.into_iter().find(|d| d["id"] == id && d["outcome"] != "pending")
    })
    .await
    .0
}

/// Checks `request`'s signature with Python's hmac under `secret`.
fn python_verifies(secret: &str, request: &Received) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, &request.body).unwrap();
    let script = repo_root().join("tests/alerts/verify_signature.py");
    let h = |k: &str| request.headers.get(k).cloned().unwrap_or_else(|| panic!("header {k}: {:?}", request.headers));
    std::process::Command::new("python3")
        .arg(script)
        .args([secret, &h("webhook-id"), &h("webhook-timestamp")])
        .arg(&body)
        .arg(h("webhook-signature"))
        .status()
        .unwrap()
        .success()
}

#[tokio::test]
async fn a_webhook_arrives_signed_and_python_verifies_the_signature() {
    let app = app(fast).await;
    let receiver = Receiver::start().await;
    let channel = add_channel(&app, "webhook", &format!("{}/hooks/outflow", receiver.url)).await;
    let secret = channel["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{channel}");
    // The secret is shown once.
    let id = channel["id"].as_i64().unwrap();
    let (_, again) = app.op(Method::GET, &format!("{CHANNELS}/{id}"), None).await;
    assert!(again.get("secret").is_none(), "{again}");
    assert_eq!(again["url"], format!("{}/hooks/outflow", receiver.url));

    let queued = queue(&app, id, &message(Status::Firing, 1)).await;
    let got = receiver.wait_for(1).await;
    let request = &got[0];
    assert_eq!(request.path, "/hooks/outflow");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(request.headers["webhook-id"].starts_with("msg_"));
    assert!(request.headers["webhook-signature"].starts_with("v1,"));
    assert!(python_verifies(&secret, request), "{request:?}");
    assert!(!python_verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", request));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "alert.firing");
    assert_eq!(body["data"]["tenant"], 83);
    assert_eq!(body["data"]["rule"]["name"], "SQL-injection burst");
    assert_eq!(body["data"]["labels"]["client_ip"], "198.51.100.0");

    let done = finished(&app, queued[0]).await;
    assert_eq!(done["outcome"], "delivered", "{done}");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["last_status"], 200);
    assert_eq!(done["webhook_id"], request.headers["webhook-id"]);
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("outflow_alert_deliveries_total{kind=\"webhook\",outcome=\"delivered\"} 1"), "{text}");
    assert!(text.contains("outflow_alert_delivery_failures 0"), "{text}");
}

#[tokio::test]
async fn retries_after_500_and_429_keep_the_webhook_id_and_body() {
    let app = app(fast).await;
    let receiver = Receiver::start_with([
        Answer::status(500),
        Answer::status(429).header("retry-after", "1"),
        Answer::status(503),
        Answer::status(200),
    ])
    .await;
    let channel = add_channel(&app, "webhook", &receiver.url).await;
    let secret = channel["secret"].as_str().unwrap().to_owned();
    let queued = queue(&app, channel["id"].as_i64().unwrap(), &message(Status::Firing, 1)).await;
    let done = finished(&app, queued[0]).await;
    assert_eq!(done["outcome"], "delivered", "{done}");
    assert_eq!(done["attempts"], 4);
    let got = receiver.received();
    assert_eq!(got.len(), 4);
    for request in &got {
        assert_eq!(request.headers["webhook-id"], got[0].headers["webhook-id"]);
        assert_eq!(request.body, got[0].body);
        assert!(python_verifies(&secret, request));
    }
}

#[tokio::test]
async fn a_410_disables_the_channel_a_400_fails_at_once_and_endless_503s_are_given_up() {
    let app = app(|c| {
        fast(c);
        c.alerts.delivery.give_up_after = Duration::from_secs(2);
    })
    .await;
    let gone = Receiver::start_with([Answer::status(410)]).await;
    let bad = Receiver::start_with([Answer::status(400)]).await;
    let down = Receiver::start_with(vec![Answer::status(503); 1000]).await;
    let gone_channel = add_channel(&app, "webhook", &gone.url).await["id"].as_i64().unwrap();
    let bad_channel = add_channel(&app, "slack", &bad.url).await["id"].as_i64().unwrap();
    let down_channel = add_channel(&app, "alertmanager", &down.url).await["id"].as_i64().unwrap();

    let first = queue(&app, gone_channel, &message(Status::Firing, 1)).await[0];
    let second = queue(&app, gone_channel, &message(Status::Resolved, 1)).await[0];
    let failed = finished(&app, first).await;
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["last_status"], 410);
    let (_, channel) = app.op(Method::GET, &format!("{CHANNELS}/{gone_channel}"), None).await;
    assert_eq!(channel["enabled"], false, "{channel}");
    assert!(channel["disabled_reason"].as_str().unwrap().contains("410"), "{channel}");
    let skipped = finished(&app, second).await;
    assert_eq!(skipped["outcome"], "failed");
    assert!(skipped["last_error"].as_str().unwrap().contains("not sent"), "{skipped}");
    assert_eq!(gone.received().len(), 1, "nothing more goes to a gone receiver");
    // Re-enabling clears the reason.
    let (_, enabled) =
        app.op(Method::PATCH, &format!("{CHANNELS}/{gone_channel}"), Some(json!({"enabled": true}))).await;
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_reason"], "");

    let bad_one = finished(&app, queue(&app, bad_channel, &message(Status::Firing, 1)).await[0]).await;
    assert_eq!(bad_one["outcome"], "failed");
    assert_eq!(bad_one["attempts"], 1);
    assert_eq!(bad_one["last_status"], 400);
    assert_eq!(bad.received().len(), 1);

    let given_up = finished(&app, queue(&app, down_channel, &message(Status::Firing, 1)).await[0]).await;
    assert_eq!(given_up["outcome"], "gave_up", "{given_up}");
    assert!(given_up["attempts"].as_i64().unwrap() > 1);
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("outflow_alert_delivery_failures 4"), "{text}");
    assert!(text.contains("outflow_alert_deliveries_total{kind=\"alertmanager\",outcome=\"gave_up\"} 1"), "{text}");
    assert!(text.contains("outflow_alert_deliveries_total{kind=\"webhook\",outcome=\"disabled\"} 1"), "{text}");

    // The outcomes, filtered by channel.
    let of_bad = deliveries(&app, &format!("?channel={bad_channel}")).await;
    assert_eq!(of_bad.len(), 1);
    assert_eq!(of_bad[0]["channel_id"], bad_channel);
}

#[tokio::test]
async fn a_slow_receiver_times_out_and_is_retried() {
    let app = app(fast).await;
    let receiver = Receiver::start_with([Answer::status(200).delay(Duration::from_secs(3))]).await;
    let channel = add_channel(&app, "webhook", &receiver.url).await["id"].as_i64().unwrap();
    let done = finished(&app, queue(&app, channel, &message(Status::Firing, 1)).await[0]).await;
    assert_eq!(done["outcome"], "delivered", "{done}");
    assert_eq!(done["attempts"], 2);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
}

#[tokio::test]
async fn a_channel_has_one_request_in_flight_and_its_messages_arrive_in_order() {
    let app = app(fast).await;
    let slow = Answer::status(200).delay(Duration::from_millis(150));
    let receiver = Receiver::start_with(vec![slow; 6]).await;
    let channel = add_channel(&app, "webhook", &receiver.url).await["id"].as_i64().unwrap();
    let mut ids = Vec::new();
    for n in 1..=6 {
        ids.extend(queue(&app, channel, &message(Status::Firing, n)).await);
    }
    for id in &ids {
        assert_eq!(finished(&app, *id).await["outcome"], "delivered");
    }
    assert_eq!(receiver.max_in_flight(), 1);
    let counts: Vec<usize> = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap()["data"]["instances"].as_array().unwrap().len())
        .collect();
    assert_eq!(counts, [1, 2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn a_rotated_secret_signs_alongside_the_previous_one_and_both_verify() {
    let app = app(fast).await;
    let receiver = Receiver::start().await;
    let channel = add_channel(&app, "webhook", &receiver.url).await;
    let (id, old) = (channel["id"].as_i64().unwrap(), channel["secret"].as_str().unwrap().to_owned());
    let (status, rotated) =
        app.op(Method::PATCH, &format!("{CHANNELS}/{id}"), Some(json!({"rotate_secret": true}))).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_until"].is_string(), "{rotated}");

    let (status, outcome) = app.op(Method::POST, &format!("{CHANNELS}/{id}/test"), None).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    let request = &receiver.received()[0];
    assert_eq!(request.headers["webhook-signature"].split(' ').count(), 2, "{request:?}");
    assert!(python_verifies(&new, request));
    assert!(python_verifies(&old, request));
    assert_eq!(serde_json::from_str::<Value>(&request.body).unwrap()["type"], "alert.test");
    // Slack channels have no secret to rotate.
    let slack = add_channel(&app, "slack", &receiver.url).await["id"].as_i64().unwrap();
    let (status, body) =
        app.op(Method::PATCH, &format!("{CHANNELS}/{slack}"), Some(json!({"rotate_secret": true}))).await;
    assert_eq!((status, body["error"]["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("rotate_secret")));
}

#[tokio::test]
async fn private_link_local_and_metadata_destinations_are_refused_naming_url() {
    let app = app(|_| {}).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.8/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "http://93.184.215.14/hook",
        "ftp://93.184.215.14/hook",
    ] {
        let (status, body) =
            app.op(Method::POST, CHANNELS, Some(json!({"kind": "webhook", "name": "x", "url": url}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
    }
    let (_, body) = app
        .op(Method::POST, CHANNELS, Some(json!({"kind": "webhook", "name": "x", "url": "https://169.254.169.254/"})))
        .await;
    assert!(body["error"]["message"].as_str().unwrap().contains("link-local"), "{body}");
    // A public https address passes (nothing is sent on creation).
    add_channel(&app, "webhook", "https://93.184.215.14/hook").await;
    // Changing the URL is checked too.
    let (_, list) = app.op(Method::GET, CHANNELS, None).await;
    let id = list[0]["id"].as_i64().unwrap();
    let (status, body) =
        app.op(Method::PATCH, &format!("{CHANNELS}/{id}"), Some(json!({"url": "https://10.1.1.1/"}))).await;
    assert_eq!((status, body["error"]["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("url")));
    // Tenants may not push to an Alertmanager's API; operators may.
    let (status, body) = app
        .op(
            Method::POST,
            CHANNELS,
            Some(json!({"kind": "alertmanager_api", "name": "am", "url": "https://93.184.215.14/"})),
        )
        .await;
    assert_eq!((status, body["error"]["field"].clone()), (StatusCode::UNPROCESSABLE_ENTITY, json!("kind")));
    let (status, body) = app
        .op(
            Method::POST,
            "/api/v1/alert-channels",
            Some(json!({"kind": "alertmanager_api", "name": "am", "url": "https://93.184.215.14/"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["tenant_id"], Value::Null);
    // At most 20 channels per tenant.
    for n in 2..=20 {
        let (status, body) = app
            .op(
                Method::POST,
                CHANNELS,
                Some(json!({"kind": "slack", "name": format!("s{n}"), "url": "https://93.184.215.14/s"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{n}: {body}");
    }
    let (status, body) = app
        .op(Method::POST, CHANNELS, Some(json!({"kind": "slack", "name": "s21", "url": "https://93.184.215.14/s"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // A Slack URL is a secret: never shown in full.
    let (_, list) = app.op(Method::GET, CHANNELS, None).await;
    assert_eq!(list[1]["url"], "https://93.184.215.14/…");
}

#[tokio::test]
async fn the_channel_test_answers_the_receivers_status_and_latency() {
    let app = app(fast).await;
    let receiver = Receiver::start_with([Answer::status(503), Answer::status(204)]).await;
    let id = add_channel(&app, "webhook", &receiver.url).await["id"].as_i64().unwrap();
    let path = format!("{CHANNELS}/{id}/test");
    let (status, outcome) = app.op(Method::POST, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["status"], 503);
    assert!(outcome["latency_ms"].is_i64());
    assert!(outcome["error"].as_str().unwrap().contains("503"), "{outcome}");
    let (_, outcome) = app.op(Method::POST, &path, None).await;
    assert_eq!(outcome["status"], 204);
    assert_eq!(outcome["error"], Value::Null);
    // Both show among the channel's last deliveries, newest first, and are audited.
    let (_, channel) = app.op(Method::GET, &format!("{CHANNELS}/{id}"), None).await;
    let last = channel["last_deliveries"].as_array().unwrap();
    assert_eq!(last.len(), 2, "{channel}");
    assert_eq!((last[0]["outcome"].clone(), last[0]["event_type"].clone()), (json!("delivered"), json!("alert.test")));
    assert_eq!((last[1]["outcome"].clone(), last[1]["last_status"].clone()), (json!("failed"), json!(503)));
    // A receiver that is not listening: no status, the reason.
    drop(receiver);
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let (_, changed) = app.op(Method::PATCH, &format!("{CHANNELS}/{id}"), Some(json!({"url": url}))).await;
    assert_eq!(changed["url"], url);
    let (_, outcome) = app.op(Method::POST, &path, None).await;
    assert_eq!(outcome["status"], Value::Null, "{outcome}");
    assert!(outcome["error"].as_str().unwrap().contains("connect"), "{outcome}");
}

#[tokio::test]
async fn slack_and_alertmanager_bodies_have_the_shape_their_receivers_expect() {
    let app = app(fast).await;
    let receiver = Receiver::start().await;
    let slack = add_channel(&app, "slack", &format!("{}/slack", receiver.url)).await;
    assert!(slack.get("secret").is_none());
    let am = add_channel(&app, "alertmanager", &format!("{}/am", receiver.url)).await;
    let (status, api) = app
        .op(
            Method::POST,
            "/api/v1/alert-channels",
            Some(
                json!({"kind": "alertmanager_api", "name": "am-api", "url": format!("{}/api/v2/alerts", receiver.url)}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{api}");
    let grouped = message(Status::Firing, 40);
    queue(&app, slack["id"].as_i64().unwrap(), &grouped).await;
    queue(&app, am["id"].as_i64().unwrap(), &grouped).await;
    queue(&app, api["id"].as_i64().unwrap(), &message(Status::Resolved, 2)).await;
    let got = receiver.wait_for(3).await;
    let by_path: BTreeMap<String, Value> =
        got.iter().map(|r| (r.path.clone(), serde_json::from_str(&r.body).unwrap())).collect();

    let s = &by_path["/slack"];
    assert!(s["text"].as_str().unwrap().starts_with("[FIRING] SQL-injection burst"), "{s}");
    let blocks = s["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[2]["text"]["text"].as_str().unwrap().lines().count(), 20);
    assert!(blocks.iter().any(|b| b["elements"][0]["text"] == "+20 other addresses"), "{s}");

    let a = &by_path["/am"];
    assert_eq!(a["version"], "4");
    assert_eq!(a["status"], "firing");
    assert_eq!(a["receiver"], "alertmanager");
    assert_eq!(a["truncatedAlerts"], 20);
    assert_eq!(a["alerts"].as_array().unwrap().len(), 20);
    for key in ["groupKey", "groupLabels", "commonLabels", "commonAnnotations", "externalURL"] {
        assert!(a.get(key).is_some(), "{key} in {a}");
    }
    for key in ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"] {
        assert!(a["alerts"][0].get(key).is_some(), "{key} in {a}");
    }

    let p = &by_path["/api/v2/alerts"];
    let alerts = p.as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0]["labels"]["alertname"], "SQL-injection burst");
    assert_eq!(alerts[0]["endsAt"], "2023-11-14T22:23:20Z");
    // The operators' deliveries are listed apart from the tenant's.
    let (status, page) = app.op(Method::GET, "/api/v1/alert-deliveries", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(deliveries(&app, "").await.len(), 2);
}

#[tokio::test]
async fn a_tenant_sees_only_its_own_channels_and_deliveries() {
    use outflow::auth::Role;
    use outflow::auth::tokens::{self, Owner};
    use outflow::tenants::TenantId;
    let app = app(fast).await;
    let receiver = Receiver::start().await;
    let id = add_channel(&app, "webhook", &receiver.url).await["id"].as_i64().unwrap();
    queue(&app, id, &message(Status::Firing, 1)).await;
    receiver.wait_for(1).await;
    let owner = Owner { role: Role::Tenant, tenant: Some(TenantId::parse(84).unwrap()), broker: None, user_id: None };
    let (_, globex) = tokens::create(&app.state.store, &owner, "globex-ci").await.unwrap();
    let call = async |method: Method, path: &str| app.call(method, path, Some(&globex), None).await;
    // Tenant 83's channel is not found under tenant 84, and 84 lists nothing.
    for method in [Method::GET, Method::DELETE] {
        let (status, _) = call(method, &format!("/api/v1/tenants/84/alert-channels/{id}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = call(Method::POST, &format!("/api/v1/tenants/84/alert-channels/{id}/test")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = call(Method::GET, "/api/v1/tenants/84/alert-channels").await;
    assert_eq!(list, json!([]));
    let (_, page) = call(Method::GET, "/api/v1/tenants/84/alert-deliveries").await;
    assert_eq!(page["deliveries"], json!([]));
    let (status, _) = call(Method::GET, &format!("/api/v1/tenants/83/alert-channels/{id}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nor is it an operators' channel.
    let (status, _) = app.op(Method::GET, &format!("/api/v1/alert-channels/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(deliveries(&app, "").await.len(), 1);
}

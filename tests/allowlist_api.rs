//! Allowlists through the REST API and the dashboard, and the agents' routes, in process:
//! validation, idempotency, the cap, the global version, long polls and "applied on k of n".

use std::time::Duration;

use outflow_testkit::{Tenants, TestApp, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const LIST: &str = "/api/v1/tenants/83/allowlist";

async fn app_with_tenant(adjust: impl FnOnce(&mut outflow::Config)) -> TestApp {
    let app = spawn_app_with(adjust).await;
    app.create_tenant(83, "Acme").await;
    app
}

async fn add(app: &TestApp, cidr: &str) -> (StatusCode, Value) {
    app.op(Method::POST, LIST, Some(json!({"cidr": cidr}))).await
}

async fn list(app: &TestApp) -> Value {
    let (status, body) = app.op(Method::GET, LIST, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn cidrs(list: &Value) -> Vec<String> {
    list["entries"].as_array().unwrap().iter().map(|e| e["cidr"].as_str().unwrap().to_owned()).collect()
}

fn assert_invalid(status: StatusCode, body: &Value, field: &str) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["code"], "invalid", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

async fn poll(app: &TestApp, after: Option<i64>) -> (StatusCode, Value) {
    let path = match after {
        Some(v) => format!("/api/v1/agent/allowlist?after={v}"),
        None => "/api/v1/agent/allowlist".into(),
    };
    app.call(Method::GET, &path, Some(&app.agent.clone()), None).await
}

/// A long poll for versions after `after`, answered in the background; the client gives up
/// after `patience`.
fn spawn_poll(app: &TestApp, after: i64, patience: Duration) -> tokio::task::JoinHandle<(StatusCode, Value)> {
    let agent = app.agent.clone();
    let url = app.url(&format!("/api/v1/agent/allowlist?after={after}"));
    tokio::spawn(async move {
        let client = reqwest::Client::builder().timeout(patience).build().unwrap();
        let resp = client.get(url).bearer_auth(agent).send().await.unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    })
}

/// Reports with `token` (an agent token) a body naming `broker`.
async fn report_with(app: &TestApp, token: &str, broker: &str, version: i64) -> (StatusCode, Value) {
    let body = json!({"broker_id": broker, "version": version, "entries": 1, "error": null});
    app.call(Method::POST, "/api/v1/agent/status", Some(token), Some(body)).await
}

/// Reports as `broker`'s own agent (a token bound to it).
async fn report(app: &TestApp, broker: &str, version: i64) -> (StatusCode, Value) {
    let token = if broker == "kafka-1" { app.agent.clone() } else { app.agent_token(broker).await };
    report_with(app, &token, broker, version).await
}

#[tokio::test]
async fn tenant_routes_need_operators_and_agent_routes_need_agents() {
    let app = app_with_tenant(|_| {}).await;
    let operator_routes = [
        (Method::GET, LIST.to_owned()),
        (Method::POST, LIST.to_owned()),
        (Method::PUT, LIST.to_owned()),
        (Method::DELETE, format!("{LIST}/1")),
    ];
    let agent_routes =
        [(Method::GET, "/api/v1/agent/allowlist".to_owned()), (Method::POST, "/api/v1/agent/status".to_owned())];
    for (method, path) in operator_routes.iter().chain(&agent_routes) {
        let (status, body) = app.call(method.clone(), path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without token");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    for (method, path) in &operator_routes {
        let (status, _) = app.call(method.clone(), path, Some(&app.agent.clone()), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with an agent token");
    }
    for (method, path) in &agent_routes {
        let (status, body) = app.op(method.clone(), path, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with an operator token");
        assert_eq!(body["error"]["message"], "this route requires an agent token");
    }
    let (_, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    for (method, path) in [
        ("get", "/api/v1/tenants/{id}/allowlist"),
        ("post", "/api/v1/tenants/{id}/allowlist"),
        ("put", "/api/v1/tenants/{id}/allowlist"),
        ("delete", "/api/v1/tenants/{id}/allowlist/{entry}"),
        ("get", "/api/v1/agent/allowlist"),
        ("post", "/api/v1/agent/status"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op["responses"]["401"].is_object(), "openapi.json lacks {method} {path} or its 401");
    }
}

#[tokio::test]
async fn entries_are_validated_normalised_and_idempotent() {
    let app = app_with_tenant(|_| {}).await;
    let before = list(&app).await["version"].as_i64().unwrap();

    let (status, entry) = add(&app, "198.51.100.77/24").await;
    assert_eq!(status, StatusCode::CREATED, "{entry}");
    assert_eq!(entry["cidr"], "198.51.100.0/24", "host bits are cleared");
    assert_eq!(entry["status"], "applied on 0 of 0 brokers");
    let (status, again) = add(&app, "198.51.100.0/24").await;
    assert_eq!(status, StatusCode::OK, "a duplicate is a no-op");
    assert_eq!(again["id"], entry["id"]);
    let (status, v6) = add(&app, "2001:DB8::7").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(v6["cidr"], "2001:db8::7/128");

    for bad in ["0.0.0.0/0", "::/0", "10.0.0.0/8", "2001:db8::/31", "example.com", "198.51.100.7/33", ""] {
        let (status, body) = add(&app, bad).await;
        assert_invalid(status, &body, "cidr");
    }
    let (status, body) =
        app.op(Method::POST, LIST, Some(json!({"cidr": "203.0.113.9", "note": "x".repeat(201)}))).await;
    assert_invalid(status, &body, "note");
    let (status, body) = app.op(Method::POST, LIST, Some(json!({"note": "no address"}))).await;
    assert_invalid(status, &body, "cidr");
    let (status, body) = app.op(Method::POST, LIST, Some(json!({"cidr": "203.0.113.9", "port": 1}))).await;
    assert_invalid(status, &body, "port");
    let (status, body) =
        app.op(Method::POST, "/api/v1/tenants/0/allowlist", Some(json!({"cidr": "203.0.113.9"}))).await;
    assert_invalid(status, &body, "id");
    let (status, _) = app.op(Method::POST, "/api/v1/tenants/84/allowlist", Some(json!({"cidr": "203.0.113.9"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Two real changes, two version bumps; the refusals and the duplicate wrote nothing.
    let after = list(&app).await;
    assert_eq!(cidrs(&after), ["198.51.100.0/24", "2001:db8::7/128"]);
    assert_eq!(after["version"].as_i64().unwrap(), before + 2);
}

#[tokio::test]
async fn the_operator_may_allow_broader_networks() {
    let app = app_with_tenant(|c| c.firewall.min_prefix_v4 = 8).await;
    assert_eq!(add(&app, "10.0.0.0/8").await.0, StatusCode::CREATED);
    let (status, body) = add(&app, "0.0.0.0/0").await;
    assert_invalid(status, &body, "cidr");
}

#[tokio::test]
async fn replace_respects_the_cap_and_writes_all_or_nothing() {
    let app = app_with_tenant(|c| c.firewall.max_entries_per_tenant = 3).await;
    let (_, kept) = add(&app, "203.0.113.1").await;
    let put = |entries: Value| app.op(Method::PUT, LIST, Some(json!({ "entries": entries })));

    let (status, body) = put(
        json!([{"cidr": "203.0.113.1"}, {"cidr": "203.0.113.2"}, {"cidr": "203.0.113.3"}, {"cidr": "203.0.113.4"}]),
    )
    .await;
    assert_invalid(status, &body, "entries");
    let (status, body) = put(json!([{"cidr": "203.0.113.2"}, {"cidr": "0.0.0.0/0"}])).await;
    assert_invalid(status, &body, "entries[1].cidr");
    assert_eq!(cidrs(&list(&app).await), ["203.0.113.1/32"], "refused lists change nothing");

    let (status, body) = put(json!([
        {"cidr": "203.0.113.1", "note": "kept"}, {"cidr": "203.0.113.2"}, {"cidr": "203.0.113.2/32"}, {"cidr": "2001:db8::/48"}
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cidrs(&body), ["203.0.113.1/32", "203.0.113.2/32", "2001:db8::/48"]);
    assert_eq!(body["entries"][0]["id"], kept["id"], "a kept entry keeps its id");
    let version = body["version"].as_i64().unwrap();
    let (_, same) = put(json!([{"cidr": "2001:db8::/48"}, {"cidr": "203.0.113.2"}, {"cidr": "203.0.113.1"}])).await;
    assert_eq!(same["version"].as_i64().unwrap(), version, "the same set is no change");

    let (status, body) = add(&app, "203.0.113.9").await;
    assert_invalid(status, &body, "cidr");
    assert!(body["error"]["message"].as_str().unwrap().contains("maximum of 3"), "{body}");

    let (status, body) = put(json!([{"cidr": "203.0.113.2"}])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cidrs(&body), ["203.0.113.2/32"]);
}

#[tokio::test]
async fn entries_are_removed_by_id_or_address() {
    let app = app_with_tenant(|_| {}).await;
    let (_, a) = add(&app, "198.51.100.7").await;
    add(&app, "198.51.100.0/24").await;
    let (status, _) = app.op(Method::DELETE, &format!("{LIST}/{}", a["id"]), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.op(Method::DELETE, &format!("{LIST}/{}", a["id"]), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = app.op(Method::DELETE, &format!("{LIST}/198.51.100.0%2F24"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.op(Method::DELETE, &format!("{LIST}/nothing"), None).await;
    assert_invalid(status, &body, "entry");
    assert!(cidrs(&list(&app).await).is_empty());
}

#[tokio::test]
async fn agents_long_poll_and_report_what_they_applied() {
    // A hold far longer than the client's patience: a poll that answers was woken by the change.
    let app = app_with_tenant(|c| c.firewall.long_poll_secs = 120).await;
    app.create_tenant(84, "Other").await;
    add(&app, "198.51.100.7").await;
    app.op(Method::POST, "/api/v1/tenants/84/allowlist", Some(json!({"cidr": "198.51.100.7"}))).await;
    app.op(Method::POST, "/api/v1/tenants/84/allowlist", Some(json!({"cidr": "2001:db8::1"}))).await;

    let (status, first) = poll(&app, None).await;
    assert_eq!(status, StatusCode::OK, "an agent with nothing applied gets the list at once");
    assert_eq!(first["entries"], json!(["198.51.100.7/32", "2001:db8::1/128"]), "every tenant, without duplicates");
    let v1 = first["version"].as_i64().unwrap();
    let (status, older) = poll(&app, Some(v1 - 1)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(older["version"], v1);

    let waiting = spawn_poll(&app, v1, Duration::from_secs(30));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, added) = add(&app, "203.0.113.5").await;
    let (status, woken) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(woken["version"], v1 + 1);
    assert!(woken["entries"].as_array().unwrap().contains(&json!("203.0.113.5/32")));

    let (status, body) = poll(&app, Some(-1)).await;
    assert_invalid(status, &body, "after");

    // "applied on k of n": a broker enforces entries added at or before the version it reports.
    assert_eq!(report(&app, "kafka-1", v1 + 1).await.0, StatusCode::NO_CONTENT);
    assert_eq!(report(&app, "kafka-2", v1).await.0, StatusCode::NO_CONTENT);
    let entries = list(&app).await["entries"].clone();
    assert_eq!(entries[0]["status"], "applied on 2 of 2 brokers");
    assert_eq!(entries[1]["cidr"], added["cidr"]);
    assert_eq!(entries[1]["status"], "applied on 1 of 2 brokers");

    let (status, body) = report_with(&app, &app.agent, "kafka 3", 1).await;
    assert_invalid(status, &body, "broker_id");
    let (status, body) = report_with(&app, &app.agent, "kafka-1", -4).await;
    assert_invalid(status, &body, "version");
}

#[tokio::test]
async fn a_short_hold_ends_with_no_content() {
    let app = app_with_tenant(|c| c.firewall.long_poll_secs = 1).await;
    let (_, first) = poll(&app, None).await;
    let (status, body) = poll(&app, first["version"].as_i64()).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

/// The value of the first hidden `csrf` field on a page.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("page has a CSRF field") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn dashboard_lists_adds_and_removes_entries_and_shows_brokers() {
    let app = spawn_app_with(|c| c.firewall.stale_after_secs = 60).await;
    app.create_tenant(83, "Acme").await;
    let browser =
        reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let resp = browser
        .post(app.url("/login"))
        .form(&[("csrf", csrf_of(&page)), ("token", app.operator.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let get = async |path: &str| {
        let resp = browser.get(app.url(path)).send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    };
    let (status, page) = get("/tenants/83/streaming").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("IP allowlist") && page.contains("No addresses yet"), "{page}");
    let csrf = csrf_of(&page);

    let form = |cidr: &str| vec![("csrf", csrf.clone()), ("cidr", cidr.to_owned()), ("note", "Madrid".to_owned())];
    let resp = browser.post(app.url("/tenants/83/allowlist")).form(&form("10.0.0.0/8")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("broader than /16") && page.contains("value=\"10.0.0.0/8\""),
        "the form keeps what was typed"
    );
    let resp = browser.post(app.url("/tenants/83/allowlist")).form(&[("cidr", "203.0.113.7")]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "no CSRF token, no change");
    let resp = browser.post(app.url("/tenants/83/allowlist")).form(&form("203.0.113.7")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    assert_eq!(report(&app, "kafka-1", 0).await.0, StatusCode::NO_CONTENT);
    let (_, page) = get("/tenants/83/streaming?notice=allowlist-added").await;
    assert!(page.contains("203.0.113.7/32") && page.contains("Madrid"), "{page}");
    assert!(page.contains("applied on 0 of 1 brokers"), "{page}");
    let version = list(&app).await["version"].as_i64().unwrap();
    assert_eq!(report(&app, "kafka-1", version).await.0, StatusCode::NO_CONTENT);
    let (_, page) = get("/tenants/83/streaming").await;
    assert!(page.contains("applied on 1 of 1 brokers"), "{page}");

    let (status, body) = report(&app, "kafka-2", 0).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    sqlx::query("update firewall_agents set last_contact_at = last_contact_at - 3600 where broker_id = 'kafka-2'")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let (status, brokers) = get("/brokers").await;
    assert_eq!(status, StatusCode::OK);
    let row = |id: &str| {
        brokers
            .split("<tr>")
            .find(|r| r.contains(&format!("<code>{id}</code>")))
            .unwrap_or_else(|| panic!("no row of {id}: {brokers}"))
            .to_owned()
    };
    assert!(row("kafka-1").contains("up to date"), "{brokers}");
    assert!(row("kafka-2").contains("stale"), "{brokers}");
    // The replicas section lists this server (once), with its address.
    assert!(brokers.contains("<title>Brokers"), "{brokers}");
    assert_eq!(brokers.matches("<h2>Server replicas</h2>").count(), 1, "{brokers}");
    assert!(row(&app.state.replica).contains(&app.addr.to_string()), "{brokers}");
    let resp = browser.post(app.url("/brokers/kafka-2/forget")).form(&[("csrf", csrf.clone())]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, page) = get("/tenants/83/streaming").await;
    assert!(page.contains("applied on 1 of 1 brokers"), "a forgotten broker no longer counts");

    let id = list(&app).await["entries"][0]["id"].as_i64().unwrap();
    let resp = browser
        .post(app.url(&format!("/tenants/83/allowlist/{id}/remove")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(cidrs(&list(&app).await).is_empty());
}

#[tokio::test]
async fn deleting_a_tenant_moves_the_version() {
    let app = spawn_app().await;
    app.create_tenant(83, "Acme").await;
    add(&app, "198.51.100.7").await;
    let (_, before) = poll(&app, None).await;
    let (status, _) = app.op(Method::DELETE, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = poll(&app, None).await;
    assert_eq!(after["version"], before["version"].as_i64().unwrap() + 1);
    assert_eq!(after["entries"], json!([]));
}

async fn brokers(app: &TestApp) -> Vec<(String, i64, String)> {
    sqlx::query_as("select broker_id, applied_version, token_name from firewall_agents order by broker_id")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_agent_reports_only_for_its_own_broker_and_published_versions() {
    let app = app_with_tenant(|_| {}).await;
    add(&app, "198.51.100.7").await;
    let (_, published) = poll(&app, None).await;
    let current = published["version"].as_i64().unwrap();

    // app.agent is bound to kafka-1: it cannot speak for kafka-2.
    let (status, body) = report_with(&app, &app.agent, "kafka-2", current).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("the broker it was created for"), "{body}");
    // Nor claim a version the server never issued.
    let (status, body) = report_with(&app, &app.agent, "kafka-1", current + 1).await;
    assert_invalid(status, &body, "version");
    assert!(body["error"]["message"].as_str().unwrap().contains("never published"), "{body}");
    assert!(brokers(&app).await.is_empty(), "refused reports record nothing");

    // Its own broker at the published version works, with or without naming the broker.
    assert_eq!(report_with(&app, &app.agent, "kafka-1", current).await.0, StatusCode::NO_CONTENT);
    let body = json!({"version": current - 1, "entries": 1});
    let (status, body) = app.call(Method::POST, "/api/v1/agent/status", Some(&app.agent.clone()), Some(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(brokers(&app).await, [("kafka-1".to_owned(), current - 1, "test-agent".to_owned())]);
    assert_eq!(list(&app).await["entries"][0]["status"], "applied on 0 of 1 brokers");

    // A token from before broker ids (none bound) still polls, but its reports are refused
    // until it is replaced.
    let legacy = "of_legacy-agent-token-without-a-broker-id-000";
    sqlx::query(
        "insert into api_tokens (name, role, token_hash, prefix, created_at) values ('old-agent', 'agent', $1, 'of_legacy', 0)",
    )
    .bind(outflow::auth::hash_token(legacy))
    .execute(app.state.store.pool())
    .await
    .unwrap();
    let (status, _) = app.call(Method::GET, "/api/v1/agent/allowlist", Some(legacy), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = report_with(&app, legacy, "kafka-9", current).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("--broker-id"), "{body}");
    assert_eq!(brokers(&app).await.len(), 1);
}

#[tokio::test]
async fn agent_tokens_are_created_for_one_broker() {
    let app = spawn_app().await;
    let create = async |body: Value| app.op(Method::POST, "/api/v1/tokens", Some(body)).await;

    let (status, body) = create(json!({"name": "kafka-2", "role": "agent"})).await;
    assert_invalid(status, &body, "broker_id");
    for bad in [json!(""), json!("kafka 2"), json!("k".repeat(65)), json!("kafka/2")] {
        let (status, body) = create(json!({"name": "kafka-2", "role": "agent", "broker_id": bad})).await;
        assert_invalid(status, &body, "broker_id");
    }
    let (status, body) = create(json!({"name": "ops", "role": "operator", "broker_id": "kafka-2"})).await;
    assert_invalid(status, &body, "broker_id");

    let (status, created) = create(json!({"name": "kafka-2 agent", "role": "agent", "broker_id": "kafka-2"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"], "agent");
    assert_eq!(created["broker_id"], "kafka-2");
    let (status, inferred) = create(json!({"name": "kafka-3 agent", "broker_id": "kafka-3"})).await;
    assert_eq!(status, StatusCode::CREATED, "{inferred}");
    assert_eq!(inferred["role"], "agent", "a broker id makes an agent token");
    let (_, listed) = app.op(Method::GET, "/api/v1/tokens", None).await;
    assert!(listed.as_array().unwrap().iter().any(|t| t["broker_id"] == "kafka-2"), "{listed}");

    let token = created["token"].as_str().unwrap();
    assert_eq!(report_with(&app, token, "kafka-2", 0).await.0, StatusCode::NO_CONTENT);
    assert_eq!(report_with(&app, token, "kafka-3", 0).await.0, StatusCode::FORBIDDEN);

    // The dashboard's form asks for the broker id too.
    let browser = outflow_testkit::browser();
    let page = browser.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let resp = browser
        .post(app.url("/login"))
        .form(&[("csrf", csrf_of(&page)), ("token", app.operator.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let page = browser.get(app.url("/tokens")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<code>kafka-2</code>"), "the list shows the binding: {page}");
    let csrf = csrf_of(&page);
    let form = |broker: &str| {
        [("csrf", csrf.clone()), ("name", "k4".into()), ("role", "agent".into()), ("broker_id", broker.into())]
    };
    let resp = browser.post(app.url("/tokens")).form(&form("")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("an agent token needs the id of its broker"));
    let resp = browser.post(app.url("/tokens")).form(&form("kafka-4")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, listed) = app.op(Method::GET, "/api/v1/tokens", None).await;
    assert!(listed.as_array().unwrap().iter().any(|t| t["broker_id"] == "kafka-4" && t["role"] == "agent"));
}

#[tokio::test]
async fn deleting_a_tenant_wakes_the_agents_long_polls() {
    let app = app_with_tenant(|c| c.firewall.long_poll_secs = 120).await;
    add(&app, "198.51.100.7").await;
    let (_, current) = poll(&app, None).await;
    let v = current["version"].as_i64().unwrap();
    // Far less patience than the 120 s hold: an answer means the delete woke the poll.
    let waiting = spawn_poll(&app, v, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = app.op(Method::DELETE, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, woken) = waiting.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(woken["version"], v + 1);
    assert_eq!(woken["entries"], json!([]), "the deleted tenant's address is gone");
}

//! Who may do what: every API route × every kind of caller (operator, the tenant's own token,
//! another tenant's token, an agent, nobody), with the status each must get. A route that the
//! OpenAPI document lists but the table does not fails the test, so a new route cannot ship
//! without deciding its access. Each call that changes something must leave an audit entry
//! naming the caller and the outcome. Also: CSRF, the sign-in rate limit, secrets stored only
//! hashed, and revocation taking effect at once.

use std::collections::BTreeSet;

use outflow::alerts::deliver::{self, channels};
use outflow::auth::Role;
use outflow::auth::tokens::{self, Owner};
use outflow::auth::users::{self, Email};
use outflow::store::alert_channels::{self, Sealed};
use outflow::tenants::TenantId;
use outflow_testkit::{Tenants, TestApp, browser, csrf_of, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const CALLERS: [&str; 5] = ["operator", "tenant-own", "tenant-other", "agent", "anonymous"];

/// One route: the call to make and the status each caller must get, in `CALLERS` order.
struct Route {
    method: Method,
    /// As in the OpenAPI document (without `/api/v1`).
    template: &'static str,
    /// The concrete path; `{own_token}` and `{user}` are filled from the fixture.
    path: &'static str,
    body: Option<Value>,
    /// Deactivate tenant 83 before the call (to activate or delete it).
    inactive: bool,
    expect: [u16; 5],
}

fn route(method: Method, template: &'static str, path: &'static str, expect: [u16; 5]) -> Route {
    Route { method, template, path, body: None, inactive: false, expect }
}

fn table() -> Vec<Route> {
    use Method as M;
    let with = |mut r: Route, body: Value| {
        r.body = Some(body);
        r
    };
    let inactive = |mut r: Route| {
        r.inactive = true;
        r
    };
    vec![
        route(M::GET, "/tenants", "/tenants", [200, 403, 403, 403, 401]),
        with(route(M::POST, "/tenants", "/tenants", [201, 403, 403, 403, 401]), json!({"id": 85, "name": "New"})),
        route(M::GET, "/tenants/{id}", "/tenants/83", [200, 200, 403, 403, 401]),
        inactive(route(M::DELETE, "/tenants/{id}", "/tenants/83", [204, 403, 403, 403, 401])),
        inactive(route(M::PUT, "/tenants/{id}/streaming", "/tenants/83/streaming", [201, 201, 403, 403, 401])),
        route(M::GET, "/tenants/{id}/streaming", "/tenants/83/streaming", [200, 200, 403, 403, 401]),
        route(M::DELETE, "/tenants/{id}/streaming", "/tenants/83/streaming", [200, 200, 403, 403, 401]),
        with(
            route(M::PATCH, "/tenants/{id}/streaming", "/tenants/83/streaming", [200, 403, 403, 403, 401]),
            json!({"partitions": 4}),
        ),
        // No broker in this test: the check runs and reports `unreachable`.
        route(M::POST, "/tenants/{id}/streaming/check", "/tenants/83/streaming/check", [200, 200, 403, 403, 401]),
        route(
            M::GET,
            "/tenants/{id}/streaming/partition-requests",
            "/tenants/83/streaming/partition-requests",
            [200, 200, 403, 403, 401],
        ),
        with(
            route(
                M::POST,
                "/tenants/{id}/streaming/partition-requests",
                "/tenants/83/streaming/partition-requests",
                [201, 201, 403, 403, 401],
            ),
            json!({"partitions": 6, "note": "holiday peak"}),
        ),
        // No broker in this test: the live view answers 503 to those allowed to see it.
        route(M::GET, "/tenants/{id}/streaming/live", "/tenants/83/streaming/live", [503, 503, 403, 403, 401]),
        with(
            route(
                M::PUT,
                "/tenants/{id}/streaming/live-tail",
                "/tenants/83/streaming/live-tail",
                [200, 403, 403, 403, 401],
            ),
            json!({"enabled": false}),
        ),
        route(M::GET, "/tenants/{id}/credentials", "/tenants/83/credentials", [200, 200, 403, 403, 401]),
        route(M::POST, "/tenants/{id}/credentials", "/tenants/83/credentials", [201, 201, 403, 403, 401]),
        route(M::DELETE, "/tenants/{id}/credentials/{k}", "/tenants/83/credentials/1", [200, 200, 403, 403, 401]),
        route(M::GET, "/tenants/{id}/bundle.zip", "/tenants/83/bundle.zip", [200, 200, 403, 403, 401]),
        route(M::GET, "/tenants/{id}/allowlist", "/tenants/83/allowlist", [200, 200, 403, 403, 401]),
        with(
            route(M::POST, "/tenants/{id}/allowlist", "/tenants/83/allowlist", [201, 201, 403, 403, 401]),
            json!({"cidr": "198.51.100.7", "note": "consumer"}),
        ),
        with(
            route(M::PUT, "/tenants/{id}/allowlist", "/tenants/83/allowlist", [200, 200, 403, 403, 401]),
            json!({"entries": [{"cidr": "198.51.100.8"}]}),
        ),
        route(
            M::DELETE,
            "/tenants/{id}/allowlist/{entry}",
            "/tenants/83/allowlist/203.0.113.9",
            [204, 204, 403, 403, 401],
        ),
        // The agent routes are for agents only; without `after` the poll answers at once.
        route(M::GET, "/agent/allowlist", "/agent/allowlist", [403, 403, 403, 200, 401]),
        with(
            route(M::POST, "/agent/status", "/agent/status", [403, 403, 403, 204, 401]),
            json!({"broker_id": "kafka-1", "version": 0, "entries": 0}),
        ),
        with(
            route(M::POST, "/agent/usage", "/agent/usage", [403, 403, 403, 200, 401]),
            json!({"broker_id": "kafka-1", "scraped_at_ms": 1, "counters": [{"topic": "c83", "counter": "bytes_out", "value": 10}]}),
        ),
        // Usage: a tenant reads its own; the ranking of every tenant is the operators'.
        route(M::GET, "/tenants/{id}/usage", "/tenants/83/usage", [200, 200, 403, 403, 401]),
        route(M::GET, "/usage", "/usage", [200, 403, 403, 403, 401]),
        with(
            route(M::POST, "/agent/request-log", "/agent/request-log", [403, 403, 403, 200, 401]),
            json!({"counts": [{"principal": "User:c83.1", "client_address": "127.0.0.1", "api": "Fetch", "requests": 1}]}),
        ),
        // The request log is the operators' (without Kafka here, turning it on answers 503).
        route(M::GET, "/brokers/{broker}/request-log", "/brokers/kafka-1/request-log", [200, 403, 403, 403, 401]),
        with(
            route(M::POST, "/brokers/{broker}/request-log", "/brokers/kafka-1/request-log", [503, 403, 403, 403, 401]),
            json!({"node_id": 1, "for_secs": 60}),
        ),
        route(M::DELETE, "/brokers/{broker}/request-log", "/brokers/kafka-1/request-log", [404, 403, 403, 403, 401]),
        route(M::GET, "/replicas", "/replicas", [200, 403, 403, 403, 401]),
        // Quotas: tenants read their own, only operators change them.
        route(M::GET, "/tenants/{id}/quota", "/tenants/83/quota", [200, 200, 403, 403, 401]),
        with(
            route(M::PUT, "/tenants/{id}/quota", "/tenants/83/quota", [200, 403, 403, 403, 401]),
            json!({"consumer_byte_rate": 200000}),
        ),
        route(M::GET, "/quotas/default", "/quotas/default", [200, 403, 403, 403, 401]),
        with(
            route(M::PUT, "/quotas/default", "/quotas/default", [200, 403, 403, 403, 401]),
            json!({"request_percentage": 50}),
        ),
        route(M::GET, "/tokens", "/tokens", [200, 200, 200, 403, 401]),
        with(route(M::POST, "/tokens", "/tokens", [201, 201, 201, 403, 401]), json!({"name": "script"})),
        // Another tenant's token is invisible to a tenant: 404, not 403, so ids leak nothing.
        route(M::DELETE, "/tokens/{token}", "/tokens/{own_token}", [200, 200, 404, 403, 401]),
        route(M::GET, "/users", "/users", [200, 403, 403, 403, 401]),
        with(
            route(M::POST, "/users", "/users", [201, 403, 403, 403, 401]),
            json!({"email": "new@acme.example", "role": "tenant", "tenant_id": 83}),
        ),
        with(route(M::PATCH, "/users/{user}", "/users/{user}", [200, 403, 403, 403, 401]), json!({"disabled": true})),
        route(M::GET, "/audit", "/audit", [200, 200, 200, 403, 401]),
        // Alert rules: tenant 83 starts with rules 1 (credential expiry) and 2 (stalled consumer).
        route(M::GET, "/tenants/{id}/alert-rules", "/tenants/83/alert-rules", [200, 200, 403, 403, 401]),
        with(
            route(M::POST, "/tenants/{id}/alert-rules", "/tenants/83/alert-rules", [201, 201, 403, 403, 401]),
            json!({"kind": "waf_burst", "name": "SQL-injection burst", "threshold": 50}),
        ),
        route(M::GET, "/tenants/{id}/alert-rules/{rule}", "/tenants/83/alert-rules/1", [200, 200, 403, 403, 401]),
        with(
            route(M::PUT, "/tenants/{id}/alert-rules/{rule}", "/tenants/83/alert-rules/1", [200, 200, 403, 403, 401]),
            json!({"kind": "credential_expiring", "name": "Expiry", "days": [14]}),
        ),
        route(M::DELETE, "/tenants/{id}/alert-rules/{rule}", "/tenants/83/alert-rules/2", [204, 204, 403, 403, 401]),
        with(
            route(
                M::PUT,
                "/tenants/{id}/alert-rules/{rule}/mute",
                "/tenants/83/alert-rules/1/mute",
                [200, 200, 403, 403, 401],
            ),
            json!({"for_secs": 3600}),
        ),
        route(
            M::DELETE,
            "/tenants/{id}/alert-rules/{rule}/mute",
            "/tenants/83/alert-rules/1/mute",
            [200, 200, 403, 403, 401],
        ),
        route(M::GET, "/tenants/{id}/alerts", "/tenants/83/alerts", [200, 200, 403, 403, 401]),
        route(M::GET, "/tenants/{id}/alert-events", "/tenants/83/alert-events", [200, 200, 403, 403, 401]),
        route(M::GET, "/alert-rules", "/alert-rules", [200, 403, 403, 403, 401]),
        with(
            route(M::POST, "/alert-rules", "/alert-rules", [201, 403, 403, 403, 401]),
            json!({"kind": "agent_stale", "name": "Agent silent", "for_secs": 120}),
        ),
        // Tenant 84's rule 3 is not an operators' rule: 404 even for an operator.
        route(M::GET, "/alert-rules/{rule}", "/alert-rules/3", [404, 403, 403, 403, 401]),
        with(
            route(M::PUT, "/alert-rules/{rule}", "/alert-rules/3", [404, 403, 403, 403, 401]),
            json!({"kind": "agent_stale", "name": "Agent silent"}),
        ),
        route(M::DELETE, "/alert-rules/{rule}", "/alert-rules/3", [404, 403, 403, 403, 401]),
        route(M::GET, "/alerts", "/alerts", [200, 403, 403, 403, 401]),
        // Alert channels: tenant 83's channel 1 and the operators' channel 2 (see the fixture).
        route(M::GET, "/tenants/{id}/alert-channels", "/tenants/83/alert-channels", [200, 200, 403, 403, 401]),
        with(
            route(M::POST, "/tenants/{id}/alert-channels", "/tenants/83/alert-channels", [201, 201, 403, 403, 401]),
            json!({"kind": "webhook", "name": "on-call", "url": "https://93.184.215.14/hook"}),
        ),
        route(M::GET, "/tenants/{id}/alert-channels/{ch}", "/tenants/83/alert-channels/1", [200, 200, 403, 403, 401]),
        with(
            route(
                M::PATCH,
                "/tenants/{id}/alert-channels/{ch}",
                "/tenants/83/alert-channels/1",
                [200, 200, 403, 403, 401],
            ),
            json!({"name": "renamed"}),
        ),
        route(
            M::DELETE,
            "/tenants/{id}/alert-channels/{ch}",
            "/tenants/83/alert-channels/1",
            [204, 204, 403, 403, 401],
        ),
        // The destination is refused at send time (loopback, not allowed): answered with the reason.
        route(
            M::POST,
            "/tenants/{id}/alert-channels/{ch}/test",
            "/tenants/83/alert-channels/1/test",
            [200, 200, 403, 403, 401],
        ),
        route(M::GET, "/tenants/{id}/alert-deliveries", "/tenants/83/alert-deliveries", [200, 200, 403, 403, 401]),
        route(M::GET, "/alert-channels", "/alert-channels", [200, 403, 403, 403, 401]),
        with(
            route(M::POST, "/alert-channels", "/alert-channels", [201, 403, 403, 403, 401]),
            json!({"kind": "alertmanager_api", "name": "am", "url": "https://93.184.215.14/api/v2/alerts"}),
        ),
        route(M::GET, "/alert-channels/{ch}", "/alert-channels/2", [200, 403, 403, 403, 401]),
        with(
            route(M::PATCH, "/alert-channels/{ch}", "/alert-channels/2", [200, 403, 403, 403, 401]),
            json!({"enabled": false}),
        ),
        route(M::DELETE, "/alert-channels/{ch}", "/alert-channels/2", [204, 403, 403, 403, 401]),
        route(M::POST, "/alert-channels/{ch}/test", "/alert-channels/2/test", [200, 403, 403, 403, 401]),
        route(M::GET, "/alert-deliveries", "/alert-deliveries", [200, 403, 403, 403, 401]),
    ]
}

/// A fresh app with tenant 83 (active) and 84, a tenant token for each, and a tenant user.
struct Fixture {
    app: TestApp,
    own: String,
    other: String,
    own_token_id: i64,
    user_id: i64,
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    app.create_and_activate(83, "Acme").await;
    app.create_and_activate(84, "Globex").await;
    let (status, body) =
        app.op(Method::POST, "/api/v1/tenants/83/allowlist", Some(json!({"cidr": "203.0.113.9"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let report = json!({"broker_id": "kafka-1", "version": 0, "entries": 0});
    let (status, body) = app.call(Method::POST, "/api/v1/agent/status", Some(&app.agent.clone()), Some(report)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let tenant =
        |id| Owner { role: Role::Tenant, tenant: Some(TenantId::parse(id).unwrap()), broker: None, user_id: None };
    let (own_token, own) = tokens::create(&app.state.store, &tenant(83), "acme-ci").await.unwrap();
    let (_, other) = tokens::create(&app.state.store, &tenant(84), "globex-ci").await.unwrap();
    let email = Email::parse("staff@acme.example").unwrap();
    let (user, _) = users::create(
        &app.state.store,
        &app.state.hashing,
        &email,
        Role::Tenant,
        Some(TenantId::parse(83).unwrap()),
        None,
    )
    .await
    .unwrap();
    // Alert channels stored directly: their loopback URL would not pass the API's guard.
    let kek = outflow::pki::Kek::from_config(&app.state.config).unwrap();
    for owner in [Some(83), None] {
        let seal = |id| Sealed {
            url: kek.seal(&channels::url_context(id), b"http://127.0.0.1:9/hook"),
            secret: Some(kek.seal(&channels::secret_context(id), deliver::sign::generate_secret().as_bytes())),
        };
        let created = alert_channels::create(&app.state.store, owner, "webhook", "hook", 20, seal).await.unwrap();
        assert!(matches!(created, alert_channels::Created::Done(_)));
    }
    Fixture { app, own, other, own_token_id: own_token.id, user_id: user.id }
}

impl Fixture {
    fn token(&self, caller: &str) -> Option<String> {
        match caller {
            "operator" => Some(self.app.operator.clone()),
            "tenant-own" => Some(self.own.clone()),
            "tenant-other" => Some(self.other.clone()),
            "agent" => Some(self.app.agent.clone()),
            _ => None,
        }
    }

    fn name(&self, caller: &str) -> &'static str {
        match caller {
            "operator" => "test-operator",
            "tenant-own" => "acme-ci",
            "tenant-other" => "globex-ci",
            "agent" => "test-agent",
            _ => "anonymous",
        }
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_table_says_and_is_audited() {
    let table = table();

    // The table covers exactly the routes the OpenAPI document describes.
    let app = spawn_app().await;
    let (status, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone())))
        .collect();
    let tabled: BTreeSet<(String, String)> =
        table.iter().map(|r| (r.method.to_string(), format!("/api/v1{}", r.template))).collect();
    let missing: Vec<_> = documented.difference(&tabled).collect();
    assert!(missing.is_empty(), "routes without an access-table entry: {missing:?}");
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(stale.is_empty(), "table entries for routes that do not exist: {stale:?}");
    // The document itself is public.
    for caller in CALLERS {
        let f = fixture().await;
        let (status, _) = f.app.call(Method::GET, "/api/v1/openapi.json", f.token(caller).as_deref(), None).await;
        assert_eq!(status, StatusCode::OK, "{caller} GET openapi.json");
    }

    let mut failures = Vec::new();
    for r in &table {
        for (i, caller) in CALLERS.iter().enumerate() {
            // A fresh world per call: an allowed call (a delete, say) must not change what the
            // next caller sees.
            let f = fixture().await;
            if r.inactive {
                let (s, b) = f.app.op(Method::DELETE, "/api/v1/tenants/83/streaming", None).await;
                assert_eq!(s, StatusCode::OK, "{b}");
            }
            let path = format!(
                "/api/v1{}",
                r.path.replace("{own_token}", &f.own_token_id.to_string()).replace("{user}", &f.user_id.to_string())
            );
            let (before,): (i64,) =
                sqlx::query_as("select count(*) from audit_log").fetch_one(f.app.state.store.pool()).await.unwrap();
            let unstaged = || f.app.state.metrics.audit_unstaged.load(std::sync::atomic::Ordering::Relaxed);
            let unstaged_before = unstaged();
            let (status, body) = f.app.call(r.method.clone(), &path, f.token(caller).as_deref(), r.body.clone()).await;
            if unstaged() != unstaged_before {
                failures
                    .push(format!("{caller} {} {path}: audit entry not written in the change's transaction", r.method));
            }
            if status.as_u16() != r.expect[i] {
                failures.push(format!("{caller} {} {path}: got {status}, want {} ({body})", r.method, r.expect[i]));
                continue;
            }

            // Mutations and downloads are audited with the caller and the outcome.
            let audited = r.method != Method::GET || r.template.ends_with("bundle.zip");
            let last: Option<(String, String, String, i64, String)> =
                sqlx::query_as("select actor, action, outcome, status, target from audit_log order by id desc limit 1")
                    .fetch_optional(f.app.state.store.pool())
                    .await
                    .unwrap();
            let (after,): (i64,) =
                sqlx::query_as("select count(*) from audit_log").fetch_one(f.app.state.store.pool()).await.unwrap();
            if audited {
                assert_eq!(after, before + 1, "{caller} {} {path}: one audit entry", r.method);
                let (actor, action, outcome, logged, target) = last.unwrap();
                assert_eq!(actor, f.name(caller), "{caller} {} {path}: actor", r.method);
                assert_eq!(action, format!("{} /api/v1{}", r.method, r.template));
                assert_eq!(target, path);
                assert_eq!(logged, i64::from(status.as_u16()));
                let want = match status.as_u16() {
                    200..=399 => "success",
                    401 | 403 | 429 => "denied",
                    _ => "failure",
                };
                assert_eq!(outcome, want, "{caller} {} {path}", r.method);
            } else {
                assert_eq!(after, before, "{caller} {} {path}: reads are not audited", r.method);
            }
        }
    }
    assert!(failures.is_empty(), "access table violations:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn a_tenants_own_token_changes_and_sign_ins_are_in_its_audit_view() {
    let f = fixture().await;
    let (status, created) =
        f.app.call(Method::POST, "/api/v1/tokens", Some(&f.own), Some(serde_json::json!({"name": "ci-2"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (status, _) = f.app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&f.own), None).await;
    assert_eq!(status, StatusCode::OK);
    session(&f.app, &f.own).await;
    let (_, page) = f.app.call(Method::GET, "/api/v1/audit", Some(&f.own), None).await;
    let actions: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["POST /api/v1/tokens", "DELETE /api/v1/tokens/{token}", "sign-in"] {
        assert!(actions.contains(&action), "{action} in the tenant's view: {actions:?}");
    }
}

#[tokio::test]
async fn tenants_read_only_their_own_audit_entries() {
    let f = fixture().await;
    f.app.call(Method::POST, "/api/v1/tenants/83/credentials", Some(&f.own), None).await;
    f.app.call(Method::POST, "/api/v1/tenants/84/credentials", Some(&f.other), None).await;
    let (status, page) = f.app.call(Method::GET, "/api/v1/audit", Some(&f.own), None).await;
    assert_eq!(status, StatusCode::OK);
    let entries = page["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(entries.iter().all(|e| e["tenant_id"] == 83), "{page}");
    let (status, _) = f.app.call(Method::GET, "/api/v1/audit?tenant=84", Some(&f.own), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Operators filter by tenant, actor and action, and page through.
    let (_, page) = f.app.op(Method::GET, "/api/v1/audit?tenant=84&action=credentials", None).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(entries[0]["actor"], "globex-ci");
    let (_, first) = f.app.op(Method::GET, "/api/v1/audit?limit=2", None).await;
    let before = first["next_before"].as_i64().expect("more than two entries");
    let (_, second) = f.app.op(Method::GET, &format!("/api/v1/audit?limit=2&before={before}"), None).await;
    assert!(second["entries"][0]["id"].as_i64().unwrap() < before);
    let (status, body) = f.app.op(Method::GET, "/api/v1/audit?since=yesterday", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "since");
    let (status, body) = f.app.op(Method::GET, "/api/v1/audit?tenant=0", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "tenant");

    // The log refuses to be rewritten.
    assert!(sqlx::query("delete from audit_log").execute(f.app.state.store.pool()).await.is_err());
    assert!(sqlx::query("update audit_log set actor = 'x'").execute(f.app.state.store.pool()).await.is_err());
}

#[tokio::test]
async fn a_revoked_token_stops_at_once_and_a_tenant_cannot_mint_wider_tokens() {
    let f = fixture().await;
    let (status, created) =
        f.app.call(Method::POST, "/api/v1/tokens", Some(&f.own), Some(json!({"name": "deploy"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["role"], "tenant");
    assert_eq!(created["tenant_id"], 83);
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, _) = f.app.call(Method::GET, "/api/v1/tenants/83/streaming", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, list) = f.app.call(Method::GET, "/api/v1/tokens", Some(&f.own), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.as_array().unwrap().iter().all(|t| t.get("token").is_none() && t["prefix"].as_str().unwrap().len() < 12)
    );

    let id = created["id"].as_i64().unwrap();
    let (status, _) = f.app.call(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(&f.own), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = f.app.call(Method::GET, "/api/v1/tenants/83/streaming", Some(&token), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked at once");

    for body in [
        json!({"name": "x", "role": "operator"}),
        json!({"name": "x", "tenant_id": 84}),
        json!({"name": "x", "role": "agent", "broker_id": "kafka-1"}),
        json!({"name": "x", "broker_id": "kafka-1"}),
    ] {
        let (status, _) = f.app.call(Method::POST, "/api/v1/tokens", Some(&f.own), Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
}

async fn sign_in(app: &TestApp, client: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
    let page = client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    client
        .post(app.url("/login"))
        .form(&[("csrf", csrf_of(&page).as_str()), ("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn invited_tenant_user_signs_in_sees_only_its_tenant_and_forms_need_csrf() {
    let f = fixture().await;
    let (status, invited) = f
        .app
        .op(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "Lead@Acme.example", "role": "tenant", "tenant_id": 83})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invited}");
    let url = invited["invite_url"].as_str().unwrap();
    let path = &url[url.find("/invite/").unwrap()..];

    let client = browser();
    let form = client.get(f.app.url(path)).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let resp = client.post(f.app.url(path)).form(&[("password", "short"), ("confirm", "short")]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let password = "a long enough passphrase";
    let resp =
        client.post(f.app.url(path)).form(&[("password", password), ("confirm", password)]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "invitation accepted and signed in");
    let used = client.get(f.app.url(path)).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::NOT_FOUND, "an invitation works once");

    // Signing in again with the password (email case does not matter) lands on its tenant.
    let client = browser();
    let resp = sign_in(&f.app, &client, "lead@acme.example", password).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = client.get(f.app.url("/tenants")).send().await.unwrap();
    assert_eq!(resp.headers()["location"], "/tenants/83/streaming");
    let page = client.get(f.app.url("/tenants/83/streaming")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Ask for this many partitions"), "tenants request partitions instead of changing them");
    assert!(!page.contains("Delete tenant"));
    let csrf = csrf_of(&page);
    for path in ["/tenants/84/streaming", "/users", "/tenants/84/bundle.zip"] {
        let resp = client.get(f.app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }

    // Form posts without the session's CSRF token change nothing.
    let creds = |app: &TestApp| {
        let db = app.state.store.pool().clone();
        async move {
            let (n,): (i64,) =
                sqlx::query_as("select count(*) from credentials where tenant_id = 83").fetch_one(&db).await.unwrap();
            n
        }
    };
    let before = creds(&f.app).await;
    for form in [vec![], vec![("csrf", "forged")]] {
        let resp = client.post(f.app.url("/tenants/83/credentials/rotate")).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(creds(&f.app).await, before);
    let resp =
        client.post(f.app.url("/tenants/83/credentials/rotate")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(creds(&f.app).await, before + 1);
    let resp =
        client.post(f.app.url("/tenants/84/credentials/rotate")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "not another tenant's");

    // The sign-ins and the dashboard rotation are in the audit log under the user's email.
    let (_, page) = f.app.op(Method::GET, "/api/v1/audit?actor=Lead@Acme.example", None).await;
    let actions: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"sign-in"), "{actions:?}");
    assert!(actions.contains(&"POST /tenants/{id}/credentials/rotate"), "{actions:?}");

    // Disabling the user ends its session at once.
    let id = invited["id"].as_i64().unwrap();
    let (status, _) = f.app.op(Method::PATCH, &format!("/api/v1/users/{id}"), Some(json!({"disabled": true}))).await;
    assert_eq!(status, StatusCode::OK);
    let resp = client.get(f.app.url("/tenants/83/streaming")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "signed out");
    assert_eq!(sign_in(&f.app, &browser(), "lead@acme.example", password).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_in_rate_limit_engages_per_account_and_per_address() {
    let app = spawn_app_with(|c| {
        c.login.max_failures_per_account = 3;
        c.login.max_failures_per_address = 6;
    })
    .await;
    let email = Email::parse("ops@cdn.example").unwrap();
    users::create(
        &app.state.store,
        &app.state.hashing,
        &email,
        Role::Operator,
        None,
        Some("the right password".into()),
    )
    .await
    .unwrap();

    for _ in 0..3 {
        assert_eq!(
            sign_in(&app, &browser(), "ops@cdn.example", "wrong password!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = sign_in(&app, &browser(), "ops@cdn.example", "the right password").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(resp.text().await.unwrap().contains("Too many failed sign-ins for this account"));

    // Other accounts from the same address, until the address limit.
    for i in 0..3 {
        let status = sign_in(&app, &browser(), &format!("guess{i}@cdn.example"), "nope nope nope").await.status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let resp = sign_in(&app, &browser(), "guess9@cdn.example", "nope nope nope").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.text().await.unwrap().contains("for this address"));

    let (_, page) = app.op(Method::GET, "/api/v1/audit?action=sign-in", None).await;
    let outcomes: Vec<&str> =
        page["entries"].as_array().unwrap().iter().map(|e| e["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes.len(), 8);
    assert!(outcomes.iter().all(|o| *o == "denied"), "{outcomes:?}");
    assert!(page["entries"].as_array().unwrap().iter().all(|e| e["source"] == "127.0.0.1"));
}

/// Sends `n` sign-in forms at once, each from its own browser with its own form, after all
/// forms were fetched; returns the statuses.
async fn simultaneous_sign_ins(app: &TestApp, n: usize, fields: &[(&str, &str)]) -> Vec<u16> {
    let mut ready = Vec::new();
    for _ in 0..n {
        let client = browser();
        let page = client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
        let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        form.push(("csrf".into(), csrf_of(&page)));
        ready.push(client.post(app.url("/login")).form(&form));
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    let mut set = tokio::task::JoinSet::new();
    for request in ready {
        let start = start.clone();
        set.spawn(async move {
            start.wait().await;
            request.send().await.unwrap().status().as_u16()
        });
    }
    let mut statuses = set.join_all().await;
    statuses.sort();
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_wrong_passwords_are_limited_like_sequential_ones() {
    // Enough hashing slots that none is refused as busy: only the limiter decides here.
    let app = spawn_app_with(|c| c.login.max_concurrent_hashes = 64).await;
    let email = Email::parse("ops@cdn.example").unwrap();
    users::create(
        &app.state.store,
        &app.state.hashing,
        &email,
        Role::Operator,
        None,
        Some("the right password".into()),
    )
    .await
    .unwrap();
    let statuses =
        simultaneous_sign_ins(&app, 30, &[("email", "ops@cdn.example"), ("password", "wrong password!")]).await;
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (5, 25), "{statuses:?}");
    let resp = sign_in(&app, &browser(), "ops@cdn.example", "the right password").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "the account is locked like after 5 in a row");

    // The token form: wrong tokens count against the address (limit 20).
    let statuses = simultaneous_sign_ins(&app, 30, &[("token", "ofl_not-a-real-token")]).await;
    // The address already holds the 5 password failures above.
    assert_eq!((count(&statuses, 401), count(&statuses, 429)), (15, 15), "{statuses:?}");
}

#[tokio::test]
async fn password_checks_beyond_the_bound_get_503_at_once() {
    let app = spawn_app_with(|c| c.login.max_concurrent_hashes = 1).await;
    let email = Email::parse("ops@cdn.example").unwrap();
    users::create(
        &app.state.store,
        &app.state.hashing,
        &email,
        Role::Operator,
        None,
        Some("the right password".into()),
    )
    .await
    .unwrap();
    // The one slot is busy: a sign-in is refused without hashing and without counting a failure.
    let held = app.state.hashing.permit().unwrap();
    for _ in 0..8 {
        let resp = sign_in(&app, &browser(), "ops@cdn.example", "wrong password!").await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.text().await.unwrap().contains("busy"));
    }
    drop(held);
    let resp = sign_in(&app, &browser(), "ops@cdn.example", "the right password").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "busy answers were not counted as failures");
}

#[tokio::test]
async fn passwords_and_tokens_are_stored_only_hashed() {
    let f = fixture().await;
    let password = "plain text must not appear";
    let email = Email::parse("vault@cdn.example").unwrap();
    users::create(&f.app.state.store, &f.app.state.hashing, &email, Role::Operator, None, Some(password.into()))
        .await
        .unwrap();
    let (_, created) = f.app.op(Method::POST, "/api/v1/tokens", Some(json!({"name": "secret-check"}))).await;
    let token = created["token"].as_str().unwrap().to_owned();
    let mut haystack = Vec::new();
    for entry in outflow_testkit::storage_files(&f.app.state, f.app.dir.path()).await {
        haystack.extend(std::fs::read(entry).unwrap());
    }
    for secret in [password, token.as_str(), f.own.as_str(), f.app.operator.as_str()] {
        assert!(!haystack.windows(secret.len()).any(|w| w == secret.as_bytes()), "a secret is stored in plaintext");
    }
    let (hash,): (String,) = sqlx::query_as("select password_hash from users where email = $1")
        .bind(email.as_str())
        .fetch_one(f.app.state.store.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}

/// Dashboard callers: sessions started with the fixture's tokens, and nobody. (Agent tokens
/// cannot sign in.)
const PAGE_CALLERS: [&str; 4] = ["operator", "tenant-own", "tenant-other", "anonymous"];

/// One dashboard route: method, route as in `outflow::web::routes()`, concrete path, form fields
/// (the session's CSRF token is added), and the status per `PAGE_CALLERS`.
struct Page {
    method: Method,
    route: &'static str,
    path: &'static str,
    form: &'static [(&'static str, &'static str)],
    inactive: bool,
    expect: [u16; 4],
}

fn page(method: Method, route: &'static str, path: &'static str, expect: [u16; 4]) -> Page {
    Page { method, route, path, form: &[], inactive: false, expect }
}

fn pages() -> Vec<Page> {
    use Method as M;
    let form = |mut p: Page, fields: &'static [(&'static str, &'static str)]| {
        p.form = fields;
        p
    };
    let inactive = |mut p: Page| {
        p.inactive = true;
        p
    };
    // 303 for anonymous callers: pages send them to the sign-in form.
    vec![
        page(M::GET, "/", "/", [303, 303, 303, 303]),
        page(M::GET, "/login", "/login", [200, 200, 200, 200]),
        // Without the sign-in form's own CSRF cookie a sign-in is refused, whoever posts it.
        page(M::POST, "/login", "/login", [403, 403, 403, 403]),
        page(M::POST, "/logout", "/logout", [303, 303, 303, 303]),
        // A tenant account's home is its own Streaming tab.
        page(M::GET, "/tenants", "/tenants", [200, 303, 303, 303]),
        form(page(M::POST, "/tenants", "/tenants", [303, 403, 403, 303]), &[("id", "85"), ("name", "New")]),
        page(M::GET, "/tenants/{id}", "/tenants/83", [303, 303, 303, 303]),
        inactive(page(M::POST, "/tenants/{id}/delete", "/tenants/83/delete", [303, 403, 403, 303])),
        page(M::GET, "/tenants/{id}/streaming", "/tenants/83/streaming", [200, 200, 403, 303]),
        inactive(page(
            M::POST,
            "/tenants/{id}/streaming/activate",
            "/tenants/83/streaming/activate",
            [303, 303, 403, 303],
        )),
        page(M::POST, "/tenants/{id}/streaming/deactivate", "/tenants/83/streaming/deactivate", [303, 303, 403, 303]),
        page(M::POST, "/tenants/{id}/streaming/check", "/tenants/83/streaming/check", [200, 200, 403, 303]),
        form(
            page(
                M::POST,
                "/tenants/{id}/streaming/partitions",
                "/tenants/83/streaming/partitions",
                [303, 403, 403, 303],
            ),
            &[("partitions", "4")],
        ),
        form(
            page(M::POST, "/tenants/{id}/streaming/quota", "/tenants/83/streaming/quota", [303, 403, 403, 303]),
            &[("consumer_byte_rate", "200000"), ("request_percentage", "")],
        ),
        page(M::POST, "/tenants/{id}/credentials/rotate", "/tenants/83/credentials/rotate", [303, 303, 403, 303]),
        page(M::POST, "/tenants/{id}/credentials/{k}/revoke", "/tenants/83/credentials/1/revoke", [303, 303, 403, 303]),
        page(M::GET, "/tenants/{id}/bundle.zip", "/tenants/83/bundle.zip", [200, 200, 403, 303]),
        form(
            page(
                M::POST,
                "/tenants/{id}/streaming/partition-requests",
                "/tenants/83/streaming/partition-requests",
                [303, 303, 403, 303],
            ),
            &[("partitions", "6")],
        ),
        page(M::GET, "/users", "/users", [200, 403, 403, 303]),
        form(
            page(M::POST, "/users", "/users", [201, 403, 403, 303]),
            &[("email", "new@acme.example"), ("role", "tenant"), ("tenant_id", "83")],
        ),
        page(M::POST, "/users/{user}/{action}", "/users/{user}/disable", [303, 403, 403, 303]),
        page(M::GET, "/tokens", "/tokens", [200, 200, 200, 303]),
        form(page(M::POST, "/tokens", "/tokens", [201, 201, 201, 303]), &[("name", "script")]),
        page(M::POST, "/tokens/{token}/revoke", "/tokens/{own_token}/revoke", [303, 303, 404, 303]),
        page(M::GET, "/audit", "/audit", [200, 200, 200, 303]),
        page(M::GET, "/ca", "/ca", [200, 403, 403, 303]),
        page(M::GET, "/ca.pem", "/ca.pem", [200, 200, 200, 303]),
        // Invitation links are their own credential: an unknown one is 404 for everyone.
        page(M::GET, "/invite/{secret}", "/invite/not-a-secret", [404, 404, 404, 404]),
        page(M::POST, "/invite/{secret}", "/invite/not-a-secret", [404, 404, 404, 404]),
        // No broker in this test: the live view answers 503 to those allowed to see it.
        page(M::GET, "/tenants/{id}/streaming/live", "/tenants/83/streaming/live", [503, 503, 403, 303]),
        page(M::GET, "/tenants/{id}/streaming/live.html", "/tenants/83/streaming/live.html", [503, 503, 403, 303]),
        form(
            page(M::POST, "/tenants/{id}/streaming/live-tail", "/tenants/83/streaming/live-tail", [303, 403, 403, 303]),
            &[("enabled", "false")],
        ),
        form(
            page(M::POST, "/tenants/{id}/allowlist", "/tenants/83/allowlist", [303, 303, 403, 303]),
            &[("cidr", "198.51.100.7")],
        ),
        page(
            M::POST,
            "/tenants/{id}/allowlist/{entry}/remove",
            "/tenants/83/allowlist/203.0.113.9/remove",
            [303, 303, 403, 303],
        ),
        page(M::GET, "/tenants/{id}/alerts", "/tenants/83/alerts", [200, 200, 403, 303]),
        form(
            page(M::POST, "/tenants/{id}/alerts/rules", "/tenants/83/alerts/rules", [303, 303, 403, 303]),
            &[("preset", "stalled")],
        ),
        page(
            M::POST,
            "/tenants/{id}/alerts/rules/{rule}/{action}",
            "/tenants/83/alerts/rules/1/mute",
            [303, 303, 403, 303],
        ),
        form(
            page(M::POST, "/tenants/{id}/alerts/channels", "/tenants/83/alerts/channels", [422, 422, 403, 303]),
            &[("kind", "webhook"), ("name", "x"), ("url", "https://10.0.0.1/hook")],
        ),
        page(
            M::POST,
            "/tenants/{id}/alerts/channels/{channel}/{action}",
            "/tenants/83/alerts/channels/1/delete",
            [303, 303, 403, 303],
        ),
        page(M::GET, "/brokers", "/brokers", [200, 403, 403, 303]),
        page(M::GET, "/usage", "/usage", [200, 403, 403, 303]),
        page(M::POST, "/brokers/{broker}/forget", "/brokers/kafka-1/forget", [303, 403, 403, 303]),
        page(M::GET, "/static/style.css", "/static/style.css", [200, 200, 200, 200]),
        page(M::GET, "/static/live.js", "/static/live.js", [200, 200, 200, 200]),
    ]
}

/// Every dashboard route, from the table the router is built from, so a page added without an
/// entry in `pages()` fails the test.
fn dashboard_routes() -> BTreeSet<(String, String)> {
    outflow::web::routes().iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect()
}

/// What is wrong with a dashboard response's security headers: every response is unsniffable,
/// unframeable and keeps its referrer on the site; HTML pages forbid inline script, framing and
/// caching.
fn security_header_problems(response: &reqwest::Response) -> Vec<String> {
    let h = response.headers();
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut problems = Vec::new();
    for (name, want) in
        [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "same-origin")]
    {
        if get(name) != want {
            problems.push(format!("{name} is {:?}, want {want:?}", get(name)));
        }
    }
    if get("content-type").starts_with("text/html") {
        let csp = get("content-security-policy");
        for directive in ["script-src 'self'", "frame-ancestors 'none'", "default-src 'none'"] {
            if !csp.split(';').any(|d| d.trim() == directive) {
                problems.push(format!("content-security-policy {csp:?} lacks {directive:?}"));
            }
        }
        if csp.contains("unsafe-inline") || csp.contains("unsafe-eval") {
            problems.push(format!("content-security-policy {csp:?} allows inline code"));
        }
        if get("cache-control") != "no-store" {
            problems.push(format!("cache-control is {:?} on a page", get("cache-control")));
        }
    }
    problems
}

/// Inline code a strict content policy would block (and so would break the page).
fn inline_code(html: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..html[i..].find('>').map_or(html.len(), |e| i + e)];
        if !tag.contains(" src=") {
            problems.push(format!("inline script {tag:?}"));
        }
    }
    let lower = html.to_lowercase();
    for marker in [" style=\"", " onclick=", " onload=", " onsubmit=", " onchange=", "javascript:", "<style"] {
        if lower.contains(marker) {
            problems.push(format!("inline code: {marker:?}"));
        }
    }
    problems
}

/// Signs in with `token` through the dashboard's token form; returns the client.
async fn session(app: &TestApp, token: &str) -> reqwest::Client {
    let client = browser();
    let login = client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let resp = client
        .post(app.url("/login"))
        .form(&[("csrf", csrf_of(&login).as_str()), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in with a fixture token");
    client
}

#[tokio::test]
async fn every_dashboard_route_answers_every_caller_as_the_table_says_and_is_audited() {
    let table = pages();
    let tabled: BTreeSet<(String, String)> = table.iter().map(|p| (p.method.to_string(), p.route.to_owned())).collect();
    let routes = dashboard_routes();
    assert!(routes.len() > 30, "read the router: {routes:?}");
    let missing: Vec<_> = routes.difference(&tabled).collect();
    assert!(missing.is_empty(), "dashboard routes without an access-table entry: {missing:?}");
    let stale: Vec<_> = tabled.difference(&routes).collect();
    assert!(stale.is_empty(), "table entries for dashboard routes that do not exist: {stale:?}");

    let mut failures = Vec::new();
    for p in &table {
        for (i, caller) in PAGE_CALLERS.iter().enumerate() {
            let f = fixture().await;
            if p.inactive {
                let (s, b) = f.app.op(Method::DELETE, "/api/v1/tenants/83/streaming", None).await;
                assert_eq!(s, StatusCode::OK, "{b}");
            }
            let client = match f.token(caller) {
                Some(token) => session(&f.app, &token).await,
                None => browser(),
            };
            // The session's CSRF token, from a page every signed-in caller may see.
            let tokens_page = client.get(f.app.url("/tokens")).send().await.unwrap().text().await.unwrap();
            let csrf = if *caller == "anonymous" { String::new() } else { csrf_of(&tokens_page) };
            let path =
                p.path.replace("{own_token}", &f.own_token_id.to_string()).replace("{user}", &f.user_id.to_string());
            let (before,): (i64,) =
                sqlx::query_as("select count(*) from audit_log").fetch_one(f.app.state.store.pool()).await.unwrap();
            let unstaged = || f.app.state.metrics.audit_unstaged.load(std::sync::atomic::Ordering::Relaxed);
            let unstaged_before = unstaged();
            let request = client.request(p.method.clone(), f.app.url(&path));
            let response = if p.method == Method::POST {
                let mut fields: Vec<(&str, &str)> = p.form.to_vec();
                fields.push(("csrf", &csrf));
                request.form(&fields).send().await.unwrap()
            } else {
                request.send().await.unwrap()
            };
            let status = response.status().as_u16();
            if unstaged() != unstaged_before {
                failures
                    .push(format!("{caller} {} {path}: audit entry not written in the change's transaction", p.method));
            }
            for problem in security_header_problems(&response) {
                failures.push(format!("{caller} {} {path}: {problem}", p.method));
            }
            let html = response.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
            if html {
                let body = response.text().await.unwrap();
                for problem in inline_code(&body) {
                    failures.push(format!("{caller} {} {path}: {problem}", p.method));
                }
            }
            if status != p.expect[i] {
                failures.push(format!("{caller} {} {path}: got {status}, want {}", p.method, p.expect[i]));
                continue;
            }
            // Every form post and download by a signed-in caller is audited under its name.
            let public = p.route.starts_with("/login") || p.route.starts_with("/invite");
            if *caller != "anonymous" && !public && (p.method == Method::POST || p.route.ends_with("bundle.zip")) {
                let last: (i64, String, String, i64) = sqlx::query_as(
                    "select (select count(*) from audit_log), actor, action, status from audit_log order by id desc limit 1",
                )
                .fetch_one(f.app.state.store.pool())
                .await
                .unwrap();
                assert_eq!(last.0, before + 1, "{caller} {} {path}: one audit entry", p.method);
                assert_eq!(last.1, f.name(caller), "{caller} {} {path}: actor", p.method);
                assert_eq!(last.2, format!("{} {}", p.method, p.route));
                assert_eq!(last.3, i64::from(status));
            }
        }
    }
    assert!(failures.is_empty(), "dashboard access table violations:\n{}", failures.join("\n"));
}

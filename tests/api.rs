//! REST API behaviour as a client sees it: auth, tenants, activation, credentials, bundle.

use outflow::tenants::TenantId;
use outflow_testkit::{Tenants, spawn_app, spawn_app_with, unzip};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn every_api_route_requires_an_operator_token() {
    let app = spawn_app().await;
    app.create_tenant(83, "Acme").await;
    let routes = [
        (Method::GET, "/api/v1/tenants"),
        (Method::POST, "/api/v1/tenants"),
        (Method::GET, "/api/v1/tenants/83"),
        (Method::DELETE, "/api/v1/tenants/83"),
        (Method::PUT, "/api/v1/tenants/83/streaming"),
        (Method::GET, "/api/v1/tenants/83/streaming"),
        (Method::DELETE, "/api/v1/tenants/83/streaming"),
        (Method::PATCH, "/api/v1/tenants/83/streaming"),
        (Method::POST, "/api/v1/tenants/83/streaming/check"),
        (Method::GET, "/api/v1/tenants/83/credentials"),
        (Method::POST, "/api/v1/tenants/83/credentials"),
        (Method::DELETE, "/api/v1/tenants/83/credentials/1"),
        (Method::GET, "/api/v1/tenants/83/bundle.zip"),
    ];
    for (method, path) in &routes {
        let (status, body) = app.call(method.clone(), path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} without token");
        assert_eq!(body["error"]["code"], "unauthorized");
        let (status, _) = app.call(method.clone(), path, Some("of_not-a-real-token"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with unknown token");
        let (status, body) = app.call(method.clone(), path, Some(&app.agent.clone()), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} with agent token");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    // The agent's attempts changed nothing.
    let (status, body) = app.op(Method::GET, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["streaming_active"], false);

    // The OpenAPI document lists every one of these routes (it is generated from the handlers).
    let (status, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path) in &routes {
        let templated = path.replace("/83", "/{id}").replace("/credentials/1", "/credentials/{k}");
        let op = &doc["paths"][&templated][method.as_str().to_lowercase()];
        assert!(op.is_object(), "openapi.json lacks {method} {templated}");
        assert!(op["responses"]["401"].is_object(), "{method} {templated} documents 401");
    }
}

#[tokio::test]
async fn tenant_crud_and_bad_input() {
    let app = spawn_app().await;
    let (status, body) = app.op(Method::POST, "/api/v1/tenants", Some(json!({"id": 83, "name": "Acme"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["id"], 83);
    assert_eq!(body["topic"], "c83");

    let (status, body) = app.op(Method::POST, "/api/v1/tenants", Some(json!({"id": 83, "name": "Other"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "conflict");

    let invalid = [
        (json!({"id": 0, "name": "x"}), "id"),
        (json!({"id": 1_000_000, "name": "x"}), "id"),
        (json!({"id": -3, "name": "x"}), "id"),
        (json!({"id": "84", "name": "x"}), "id"),
        (json!({"id": 84, "name": ""}), "name"),
        (json!({"id": 84, "name": "   "}), "name"),
        (json!({"id": 84, "name": "n".repeat(101)}), "name"),
        (json!({"id": 84}), "name"),
        (json!({"name": "x"}), "id"),
    ];
    for (body, field) in invalid {
        let (status, resp) = app.op(Method::POST, "/api/v1/tenants", Some(body.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(resp["error"]["field"], field, "{body} -> {resp}");
        assert!(resp["error"]["message"].as_str().unwrap().contains(field), "{resp}");
    }
    // Exactly 100 characters is fine; nothing was half-written by the failures above.
    let (status, _) =
        app.op(Method::POST, "/api/v1/tenants", Some(json!({"id": 999999, "name": "é".repeat(100)}))).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, list) = app.op(Method::GET, "/api/v1/tenants", None).await;
    let ids: Vec<i64> = list.as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [83, 999999]);

    // Malformed JSON and a wrong content type are client errors with the same error body.
    let resp = app
        .client
        .post(app.url("/api/v1/tenants"))
        .bearer_auth(&app.operator)
        .header("content-type", "application/json")
        .body("{\"id\": 5,")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp =
        app.client.post(app.url("/api/v1/tenants")).bearer_auth(&app.operator).body("id=5").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_body");

    for (path, status) in [
        ("/api/v1/tenants/84", StatusCode::NOT_FOUND),
        ("/api/v1/tenants/0", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/tenants/abc", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/tenants/84/streaming", StatusCode::NOT_FOUND),
        ("/api/v1/tenants/84/credentials", StatusCode::NOT_FOUND),
    ] {
        let (got, body) = app.op(Method::GET, path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["message"].is_string());
    }
    // An undecodable path segment or a repeated query parameter gets the error body too.
    for (method, path, token) in [
        (Method::DELETE, "/api/v1/tenants/%FF", app.operator.as_str()),
        (Method::DELETE, "/api/v1/tokens/%FF", app.operator.as_str()),
        (Method::GET, "/api/v1/audit?limit=1&limit=2", app.operator.as_str()),
        (Method::GET, "/api/v1/agent/allowlist?after=1&after=2", app.agent.as_str()),
    ] {
        let (got, body) = app.call(method, path, Some(token), None).await;
        assert_eq!(got, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid", "{path}: {body}");
    }

    let (status, _) = app.op(Method::DELETE, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.op(Method::DELETE, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.op(Method::GET, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn activation_is_idempotent_and_race_free() {
    let app = spawn_app().await;
    app.create_tenant(83, "Acme").await;

    // Bundle before activation: 409.
    let (status, body) = app.op(Method::GET, "/api/v1/tenants/83/bundle.zip", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = app.client.put(app.url("/api/v1/tenants/83/streaming")).bearer_auth(&app.operator);
        calls.spawn(async move { request.send().await.unwrap().status() });
    }
    let results: Vec<StatusCode> = calls.join_all().await;
    let created = results.iter().filter(|s| **s == StatusCode::CREATED).count();
    let ok = results.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((created, ok), (1, 7), "{results:?}");

    let (status, again) = app.op(Method::PUT, "/api/v1/tenants/83/streaming", None).await;
    assert_eq!(status, StatusCode::OK);
    let creds = again["credentials"].as_array().unwrap();
    assert_eq!(creds.len(), 1, "{again}");
    assert_eq!(creds[0]["cn"], "c83.1");
    assert_eq!(creds[0]["state"], "active");
    assert_eq!(again["group_prefix"], "c83_");
    let topics: Vec<(String, i64)> = again["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_owned(), t["partitions"].as_i64().unwrap()))
        .collect();
    assert_eq!(topics, [("c83".to_owned(), 2), ("c83_waf".to_owned(), 2)]);

    let (status, status_body) = app.op(Method::GET, "/api/v1/tenants/83/streaming", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_body["active"], true);
    assert_eq!(status_body["reconcile"]["status"], "pending");

    // An active tenant cannot be deleted by accident.
    let (status, _) = app.op(Method::DELETE, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn rotation_revocation_and_the_bundle_follow_the_newest_active_credential() {
    let app = spawn_app().await;
    app.create_tenant(83, "Acme").await;

    let (status, _) = app.op(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "rotation needs streaming active");

    app.activate(83).await;
    let first = unzip(&app.bundle(83).await);
    let again = unzip(&app.bundle(83).await);
    // Same credential on every download (the key is stored, not regenerated).
    assert_eq!(first["c83.crt.pem"], again["c83.crt.pem"]);
    assert_eq!(first["password.txt"], again["password.txt"]);

    let (status, rotated) = app.op(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(rotated["cn"], "c83.2");
    assert_eq!(rotated["k"], 2);
    let second = unzip(&app.bundle(83).await);
    assert_ne!(first["c83.crt.pem"], second["c83.crt.pem"]);
    assert_ne!(first["password.txt"], second["password.txt"]);

    let (_, list) = app.op(Method::GET, "/api/v1/tenants/83/credentials", None).await;
    let states: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["cn"].as_str().unwrap().to_owned(), c["state"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(states, [("c83.1".into(), "active".into()), ("c83.2".into(), "active".into())]);
    for c in list.as_array().unwrap() {
        assert_eq!(c["serial"].as_str().unwrap().len(), 32);
        assert!(c["not_after"].as_str().unwrap().ends_with('Z'));
        assert!(c.get("password").is_none() && c.get("key").is_none());
    }

    // Revoking the newest falls back to the previous one in the bundle.
    let (status, revoked) = app.op(Method::DELETE, "/api/v1/tenants/83/credentials/2", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["state"], "revoked");
    let (status, _) = app.op(Method::DELETE, "/api/v1/tenants/83/credentials/2", None).await;
    assert_eq!(status, StatusCode::OK, "revocation is idempotent");
    assert_eq!(unzip(&app.bundle(83).await)["c83.crt.pem"], first["c83.crt.pem"]);

    for (path, status) in [
        ("/api/v1/tenants/83/credentials/9", StatusCode::NOT_FOUND),
        ("/api/v1/tenants/83/credentials/0", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/tenants/83/credentials/x", StatusCode::UNPROCESSABLE_ENTITY),
        ("/api/v1/tenants/84/credentials/1", StatusCode::NOT_FOUND),
    ] {
        let (got, body) = app.op(Method::DELETE, path, None).await;
        assert_eq!(got, status, "{path}: {body}");
    }

    // With every credential revoked there is nothing to download.
    app.op(Method::DELETE, "/api/v1/tenants/83/credentials/1", None).await;
    let (status, body) = app.op(Method::GET, "/api/v1/tenants/83/bundle.zip", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // A fresh rotation issues k = 3; deactivation revokes everything.
    let (_, third) = app.op(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    assert_eq!(third["cn"], "c83.3");
    let (status, deactivated) = app.op(Method::DELETE, "/api/v1/tenants/83/streaming", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deactivated["active"], false);
    assert!(deactivated["credentials"].as_array().unwrap().iter().all(|c| c["state"] == "revoked"));
    let (status, _) = app.op(Method::GET, "/api/v1/tenants/83/bundle.zip", None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Re-activation issues the next credential number, never reusing a principal.
    let reactivated = app.activate(83).await;
    let active: Vec<&str> = reactivated["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "active")
        .map(|c| c["cn"].as_str().unwrap())
        .collect();
    assert_eq!(active, ["c83.4"]);
}

#[tokio::test]
async fn partitions_only_increase_and_mark_the_tenant_pending() {
    let app = spawn_app().await;
    app.create_tenant(83, "Acme").await;
    let (status, _) = app.op(Method::PATCH, "/api/v1/tenants/83/streaming", Some(json!({"partitions": 4}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "not active yet");
    app.activate(83).await;
    let (status, body) = app.op(Method::PATCH, "/api/v1/tenants/83/streaming", Some(json!({"partitions": 4}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["topics"].as_array().unwrap().iter().all(|t| t["partitions"] == 4), "{body}");
    assert_eq!(body["reconcile"]["status"], "pending");
    // No cluster configured in this test: the status says so instead of pretending.
    assert!(body["reconcile"]["last_error"].as_str().unwrap().contains("no Kafka cluster"), "{body}");
    for (bad, field) in [
        (json!({"partitions": 3}), "partitions"),
        (json!({"partitions": 0}), "partitions"),
        (json!({"partitions": 5000}), "partitions"),
        (json!({"partitions": "8"}), "partitions"),
        (json!({}), "partitions"),
    ] {
        let (status, body) = app.op(Method::PATCH, "/api/v1/tenants/83/streaming", Some(bad.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{bad}: {body}");
    }
    let (status, body) = app.op(Method::PATCH, "/api/v1/tenants/83/streaming", Some(json!({"partitions": 4}))).await;
    assert_eq!(status, StatusCode::OK, "same count is a no-op: {body}");
}

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn_app().await;
    app.create_and_activate(83, "Acme").await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("outflow_tenants 1\n"), "{metrics}");
    assert!(metrics.contains("outflow_tenants_streaming_active 1\n"), "{metrics}");
    assert!(metrics.contains("outflow_credentials_active 1\n"), "{metrics}");
}

/// Reads from `stream` until the peer closes it or `limit` passes; returns what arrived and
/// whether the connection was closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: std::time::Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn slow_clients_are_cut_off_at_the_header_and_body_deadlines() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|c| {
        c.http.header_timeout_secs = 1;
        c.http.body_timeout_secs = 1;
    })
    .await;
    // Headers that never finish: the server closes the connection.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: outflow\r\nX-Slow: ").await.unwrap();
    let (_, closed) = read_until_closed(&mut slow, std::time::Duration::from_secs(20)).await;
    assert!(closed, "a half-sent request header does not hold the connection");

    // A body that never finishes: 408 with the API's error body.
    let mut slow = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/tenants HTTP/1.1\r\nHost: outflow\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"id\": 83",
        app.operator
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut slow, std::time::Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("not received within 1 s"), "{answer}");
    let (status, _) = app.op(Method::GET, "/api/v1/tenants/83", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was created from the partial body");

    // Too large a body: 413.
    let (status, body) =
        app.op(Method::POST, "/api/v1/tenants", Some(json!({"id": 83, "name": "x".repeat(3 * 1024 * 1024)}))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_ends() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|c| c.http.max_connections = 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: outflow\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 256];
        let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(stream); // kept alive: each holds a slot
    }
    let mut third = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: outflow\r\nConnection: close\r\n\r\n").await.unwrap();
    let (answer, _) = read_until_closed(&mut third, std::time::Duration::from_millis(700)).await;
    assert!(answer.is_empty(), "the third connection is not served while two are open: {answer}");
    drop(held.pop());
    let (answer, closed) = read_until_closed(&mut third, std::time::Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 200") && closed, "served once a slot is free: {answer}");
}

#[tokio::test]
async fn connectivity_checks_run_one_per_tenant_and_a_few_in_all() {
    // Nothing listens on port 1: a check that runs answers `unreachable`.
    let app = spawn_app_with(|c| {
        c.max_concurrent_checks = 2;
        c.brokers = vec!["127.0.0.1:1".into()];
    })
    .await;
    for (id, name) in [(83, "Acme"), (84, "Globex")] {
        app.create_and_activate(id, name).await;
    }
    let tenant = |id| TenantId::parse(id).unwrap();
    let check = async |id: i64| app.op(Method::POST, &format!("/api/v1/tenants/{id}/streaming/check"), None).await;

    // Tenant 83 has a check running: a second one is refused at once.
    let running = app.state.checks.try_acquire(tenant(83)).unwrap();
    let (status, body) = check(83).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "too_many_requests");
    assert!(body["error"]["message"].as_str().unwrap().contains("tenant 83 is already running"), "{body}");

    // Two running in all (83 and 85): the cap refuses tenant 84 too.
    let other = app.state.checks.try_acquire(tenant(85)).unwrap();
    let (status, body) = check(84).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("too many connectivity checks"), "{body}");

    // Once they finish, checks run again, and free their slot when done.
    drop(running);
    drop(other);
    let (a, b) = tokio::join!(check(83), check(84));
    for (status, body) in [a, b] {
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "unreachable", "{body}");
    }
    assert_eq!(app.state.checks.running(), 0);

    let (_, doc) = app.call(Method::GET, "/api/v1/openapi.json", None, None).await;
    assert!(doc["paths"]["/api/v1/tenants/{id}/streaming/check"]["post"]["responses"]["429"].is_object());
}

/// Behind a trusted reverse proxy the audit log records the client `X-Forwarded-For` names;
/// from any other peer the header is ignored.
#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    for (trusted, expected) in [(vec!["127.0.0.0/8".to_owned()], "198.51.100.23"), (vec![], "127.0.0.1")] {
        let app = spawn_app_with(|c| c.http.trusted_proxies = trusted).await;
        let resp = app
            .client
            .post(app.url("/api/v1/tenants"))
            .bearer_auth(&app.operator)
            .header("x-forwarded-for", "6.6.6.6, 198.51.100.23")
            .json(&serde_json::json!({"id": 83, "name": "Acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        let (_, page) = app.op(Method::GET, "/api/v1/audit?action=POST", None).await;
        assert_eq!(page["entries"][0]["source"], expected, "{page}");
    }
}

#[tokio::test]
async fn usage_reports_count_once_and_read_back_as_json_and_csv() {
    let app = spawn_app().await;
    app.create_tenant(83, "Acme").await;
    app.create_tenant(84, "Beta").await;
    let report = |ms: i64, out83: i64, out84: i64| {
        json!({"scraped_at_ms": ms, "broker_started_at_ms": 1_000, "counters": [
            {"topic": "c83", "counter": "bytes_out", "value": out83},
            {"topic": "c83_waf", "counter": "records_in", "value": 7},
            {"topic": "c84", "counter": "bytes_out", "value": out84},
        ]})
    };
    let agent = app.agent.clone();
    let post = async |body: Value| app.call(Method::POST, "/api/v1/agent/usage", Some(&agent), Some(body)).await;
    let (status, body) = post(report(10_000, 100, 5)).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("baseline")), "{body}");
    assert_eq!(post(report(20_000, 1_100, 3_005)).await.1["outcome"], "counted");
    assert_eq!(post(report(20_000, 9_999, 9_999)).await.1["outcome"], "duplicate", "a retried report");

    // Another broker's report with this token, and hostile bodies.
    let mut other = report(30_000, 1, 1);
    other["broker_id"] = json!("kafka-2");
    assert_eq!(post(other).await.0, StatusCode::FORBIDDEN);
    for bad in [
        json!({"scraped_at_ms": 40_000, "counters": [{"topic": "__consumer_offsets", "counter": "bytes_out", "value": 1}]}),
        json!({"scraped_at_ms": 40_000, "counters": [{"topic": "c83", "counter": "bytes_sideways", "value": 1}]}),
        json!({"scraped_at_ms": 40_000, "counters": [{"topic": "c83", "counter": "bytes_out", "value": -1}]}),
        json!({"scraped_at_ms": -5, "counters": []}),
        json!({"scraped_at_ms": 40_000, "broker_started_at_ms": 0, "counters": []}),
    ] {
        let (status, body) = post(bad.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (status, _) = app.op(Method::POST, "/api/v1/agent/usage", Some(report(50_000, 1, 1))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "operators do not report usage");

    let (status, body) = app.op(Method::GET, "/api/v1/tenants/83/usage", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hours"].as_array().unwrap().len(), 1, "{body}");
    let hour = &body["hours"][0];
    assert_eq!((hour["bytes_out"].as_i64(), hour["partial"].as_bool()), (Some(1_000), Some(true)), "{body}");
    assert_eq!(body["total"]["bytes_out"], 1_000);
    let (_, ranking) = app.op(Method::GET, "/api/v1/usage", None).await;
    let order: Vec<i64> =
        ranking["tenants"].as_array().unwrap().iter().map(|t| t["tenant_id"].as_i64().unwrap()).collect();
    assert_eq!(order, [84, 83], "most bytes out first: {ranking}");
    assert_eq!(ranking["tenants"][0]["name"], "Beta");

    // CSV by query or Accept.
    for (path, accept) in [("/api/v1/tenants/83/usage?format=csv", "*/*"), ("/api/v1/tenants/83/usage", "text/csv")] {
        let response =
            app.client.get(app.url(path)).bearer_auth(&app.operator).header("accept", accept).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = response.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "tenant_id,hour_start,bytes_out,broker_bytes_out,outflow_bytes,records_out,bytes_in,records_in,partial"
        );
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[1].starts_with("83,") && lines[1].ends_with(",1000,1000,0,0,0,0,true"), "{text}");
    }
    // Ranges: ordered, bounded, RFC 3339; unknown formats refused.
    for bad in [
        "/api/v1/tenants/83/usage?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
        "/api/v1/tenants/83/usage?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/api/v1/tenants/83/usage?from=yesterday",
        "/api/v1/tenants/83/usage?format=xml",
    ] {
        let (status, body) = app.op(Method::GET, bad, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
    }
    let (_, past) =
        app.op(Method::GET, "/api/v1/tenants/83/usage?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z", None).await;
    assert_eq!(past["hours"], json!([]));
    assert_eq!(app.op(Method::GET, "/api/v1/tenants/99/usage", None).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn request_log_windows_are_validated_and_agents_report_only_their_broker() {
    let app = spawn_app().await;
    let path = "/api/v1/brokers/kafka-1/request-log";
    for (body, field) in [
        (json!({"node_id": 1, "for_secs": 5}), "for_secs"),
        (json!({"node_id": 1, "for_secs": 3601}), "for_secs"),
        (json!({"node_id": -1, "for_secs": 60}), "node_id"),
    ] {
        let (status, answer) = app.op(Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(answer.to_string().contains(field), "{answer}");
    }
    assert_eq!(app.op(Method::POST, path, Some(json!({"node_id": 1}))).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    // Without Kafka there is no broker logger to change.
    let (status, body) = app.op(Method::POST, path, Some(json!({"node_id": 1, "for_secs": 60}))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(app.op(Method::DELETE, path, None).await.0, StatusCode::NOT_FOUND);
    let (_, view) = app.op(Method::GET, path, None).await;
    assert_eq!(view, json!({"window": null, "clients": []}));
    assert_eq!(
        app.op(Method::GET, "/api/v1/brokers/not a broker/request-log", None).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    let agent = app.agent.clone();
    let count = json!({"principal": "User:c83.1", "client_address": "198.51.100.10", "api": "Fetch", "requests": 2});
    let report = |broker: Option<&str>, c: Value| {
        let mut body = json!({"counts": [c]});
        if let Some(b) = broker {
            body["broker_id"] = json!(b);
        }
        body
    };
    let post = async |body: Value| app.call(Method::POST, "/api/v1/agent/request-log", Some(&agent), Some(body)).await;
    let (status, body) = post(report(None, count.clone())).await;
    assert_eq!((status, &body["counted"]), (StatusCode::OK, &json!(false)), "no window: nothing kept");
    assert_eq!(post(report(Some("kafka-2"), count.clone())).await.0, StatusCode::FORBIDDEN);
    for bad in [
        json!({"principal": "", "client_address": "x", "api": "Fetch", "requests": 1}),
        json!({"principal": "User:a\nb", "client_address": "x", "api": "Fetch", "requests": 1}),
        json!({"principal": "User:a", "client_address": "x", "api": "Fetch", "requests": 0}),
    ] {
        assert_eq!(post(report(None, bad)).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    }
}

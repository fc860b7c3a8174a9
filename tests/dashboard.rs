//! The dashboard without JavaScript: plain form posts and redirects, as a browser without
//! scripts would make them.

use outflow_testkit::{Tenants, TestApp, browser, csrf_of, spawn_app, spawn_app_with, unzip};
use reqwest::StatusCode;

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let resp = client.get(app.url(path)).send().await.unwrap();
    (resp.status(), resp.text().await.unwrap())
}

async fn post(client: &reqwest::Client, app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client.post(app.url(path)).form(form).send().await.unwrap()
}

async fn sign_in(app: &TestApp) -> (reqwest::Client, String) {
    let client = browser();
    let (_, page) = get(&client, app, "/login").await;
    let resp = post(&client, app, "/login", &[("csrf", &csrf_of(&page)), ("token", &app.operator)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("outflow_session="))
        .expect("session cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let (status, page) = get(&client, app, "/tenants").await;
    assert_eq!(status, StatusCode::OK);
    (client, csrf_of(&page))
}

#[tokio::test]
async fn sign_in_requires_an_operator_token_and_a_matching_form_token() {
    let app = spawn_app().await;
    let client = browser();
    let (status, _) = get(&client, &app, "/tenants").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "pages redirect to sign-in without a session");

    get(&client, &app, "/login").await;
    let resp = post(&client, &app, "/login", &[("csrf", "forged"), ("token", &app.operator)]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let (_, page) = get(&client, &app, "/login").await;
    let resp = post(&client, &app, "/login", &[("csrf", &csrf_of(&page)), ("token", &app.agent)]).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "agent tokens cannot sign in");
    assert!(resp.text().await.unwrap().contains("not a valid operator or tenant token"));

    let (client, csrf) = sign_in(&app).await;
    let resp = post(&client, &app, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (status, _) = get(&client, &app, "/tenants").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "signed out");
}

#[tokio::test]
async fn operator_creates_activates_rotates_and_downloads_without_javascript() {
    let app = spawn_app().await;
    let (client, csrf) = sign_in(&app).await;

    // A form post with a missing or wrong CSRF token changes nothing.
    for bad in [vec![("id", "83"), ("name", "Acme")], vec![("id", "83"), ("name", "Acme"), ("csrf", "wrong")]] {
        let resp = post(&client, &app, "/tenants", &bad).await;
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    }
    let (_, list) = app.op(reqwest::Method::GET, "/api/v1/tenants", None).await;
    assert_eq!(list.as_array().unwrap().len(), 0);

    // Bad input re-renders the form naming the field, keeping what was typed.
    let resp = post(&client, &app, "/tenants", &[("id", "0"), ("name", "Acme"), ("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id: tenant id must be between 1 and 999999"), "{html}");
    assert!(html.contains("value=\"Acme\""));

    let resp = post(&client, &app, "/tenants", &[("id", "83"), ("name", "Acme <script>"), ("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/tenants/83/streaming?notice=created");
    let (_, page) = get(&client, &app, "/tenants").await;
    assert!(page.contains("Acme &#60;script&#62;") || page.contains("Acme &lt;script&gt;"), "names are escaped");

    let (status, page) = get(&client, &app, "/tenants/83/streaming").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Activate streaming"));
    let resp = post(&client, &app, "/tenants/83/streaming/activate", &[("csrf", "nope")]).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let resp = post(&client, &app, "/tenants/83/streaming/activate", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);

    let (_, page) = get(&client, &app, "/tenants/83/streaming?notice=activated").await;
    for needle in [
        "Streaming activated",
        "localhost:9093",
        "<code>c83</code>",
        "<code>c83_waf</code>",
        "<code>c83_</code>",
        "c83.1",
        "/tenants/83/bundle.zip",
        "same group id",
        "different group ids",
        "With 2 partitions",
    ] {
        assert!(page.contains(needle), "Streaming tab lacks {needle}");
    }

    let resp = post(&client, &app, "/tenants/83/credentials/rotate", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let resp = post(&client, &app, "/tenants/83/credentials/1/revoke", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&client, &app, "/tenants/83/streaming").await;
    assert!(page.contains("c83.2") && page.contains("revoked"), "credentials table shows rotation and revocation");

    let resp = client.get(app.url("/tenants/83/bundle.zip")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let files = unzip(&resp.bytes().await.unwrap());
    assert!(String::from_utf8_lossy(&files["README.txt"]).contains("CN=c83.2"));

    // Errors are pages with real status codes.
    let (status, page) = get(&client, &app, "/tenants/84/streaming").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("tenant 84 does not exist"));
}

#[tokio::test]
async fn static_assets_are_served() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/static/style.css")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn a_check_while_another_runs_shows_a_429_page() {
    let app = spawn_app_with(|c| c.brokers = vec!["127.0.0.1:1".into()]).await;
    app.create_and_activate(83, "Acme").await;
    let (client, csrf) = sign_in(&app).await;
    let running = app.state.checks.try_acquire(outflow::tenants::TenantId::parse(83).unwrap()).unwrap();
    let resp = post(&client, &app, "/tenants/83/streaming/check", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let page = resp.text().await.unwrap();
    assert!(page.contains("429 Too Many Requests") && page.contains("already running"), "{page}");

    drop(running);
    let resp = post(&client, &app, "/tenants/83/streaming/check", &[("csrf", &csrf)]).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("<strong>unreachable</strong>"));
}

#[tokio::test]
async fn a_planted_sign_in_form_pair_and_cross_site_posts_are_refused() {
    let app = spawn_app().await;
    // An attacker who can set a cookie for the site plants a value and posts the same value:
    // cookie and field match, but the value was never issued by the server.
    let planted = "p1anted.1700000000.bm90LWEtbWFj";
    for value in [planted, "plainvalue"] {
        let resp = app
            .client
            .post(app.url("/login"))
            .header("cookie", format!("outflow_login_csrf={value}"))
            .form(&[("csrf", value), ("token", app.operator.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{value}");
    }
    // A genuine form, posted from another site (the browser says so), is refused too.
    let client = browser();
    let (_, page) = get(&client, &app, "/login").await;
    let csrf = csrf_of(&page);
    for (name, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let resp = client
            .post(app.url("/login"))
            .header(name, value)
            .form(&[("csrf", csrf.as_str()), ("token", app.operator.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{name}: {value}");
    }
    // The same form from the site itself signs in.
    let (_, page) = get(&client, &app, "/login").await;
    let resp = client
        .post(app.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .header("origin", format!("http://{}", app.addr))
        .form(&[("csrf", csrf_of(&page).as_str()), ("token", app.operator.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn operators_set_a_quota_on_the_streaming_tab_and_too_low_a_rate_is_explained() {
    let app = spawn_app().await;
    app.api().create_and_activate(83, "Acme").await;
    let (client, csrf) = sign_in(&app).await;
    let (_, page) = get(&client, &app, "/tenants/83/streaming").await;
    assert!(page.contains("No read rate limit.") && page.contains("Save quota"), "{page}");

    let form = |rate: &'static str| {
        vec![("csrf", csrf.clone()), ("consumer_byte_rate", rate.into()), ("request_percentage", "".into())]
    };
    let resp = client.post(app.url("/tenants/83/streaming/quota")).form(&form("50000")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = resp.text().await.unwrap();
    assert!(html.contains("consumer_byte_rate") && html.contains("starve"), "{html}");

    let resp = client.post(app.url("/tenants/83/streaming/quota")).form(&form("200000")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let (_, page) = get(&client, &app, "/tenants/83/streaming?notice=quota").await;
    assert!(page.contains("Quota saved") && page.contains("<strong>200000 bytes/s</strong>"), "{page}");
    assert!(page.contains("<code>User:c83.1</code>"));
    let (_, quota) = app.op(reqwest::Method::GET, "/api/v1/tenants/83/quota", None).await;
    assert_eq!(quota["own"]["consumer_byte_rate"], 200_000);
}

#[tokio::test]
async fn the_streaming_tab_charts_a_weeks_bytes_out_and_operators_rank_tenants() {
    use outflow::store::usage::{self, Counter, CounterValue, Scrape};
    let app = spawn_app().await;
    app.api().create_and_activate(83, "Acme").await;
    app.api().create_and_activate(84, "Beta").await;
    let (client, _) = sign_in(&app).await;
    let (_, page) = get(&client, &app, "/tenants/83/streaming").await;
    assert!(page.contains("Nothing delivered to your consumers in the last 7 days."), "{page}");

    // Two hours metered for tenant 83 (two days ago and now), one for 84.
    let store = &app.state.store;
    let now = outflow::clock::now();
    let hour = now.div_euclid(3600) * 3600;
    let value = |tenant: i64, v: i64| CounterValue {
        tenant,
        topic: format!("c{tenant}"),
        counter: Counter::BytesOut,
        value: v,
    };
    let scrape = |ms: i64| Scrape { scraped_at_ms: ms, started_at_ms: Some(1) };
    usage::record_counters(store, "kafka-1", scrape(1), hour, now, &[value(83, 0), value(84, 0)]).await.unwrap();
    usage::record_counters(store, "kafka-1", scrape(2), hour - 48 * 3600, now, &[value(83, 3 << 20), value(84, 0)])
        .await
        .unwrap();
    usage::record_counters(store, "kafka-1", scrape(3), hour, now, &[value(83, 4 << 20), value(84, 5 << 20)])
        .await
        .unwrap();

    let (_, page) = get(&client, &app, "/tenants/83/streaming").await;
    let svg = page.split("<svg class=\"usage-chart\"").nth(1).expect("a chart").split("</svg>").next().unwrap();
    assert_eq!(svg.matches("<rect ").count(), 2, "{svg}");
    assert!(svg.contains("3.00 MiB") && svg.contains("1.00 MiB"), "hover titles: {svg}");
    assert!(page.contains("<strong>4.00 MiB</strong> (the current hour is still counting)"), "{page}");

    let (status, page) = get(&client, &app, "/usage").await;
    assert_eq!(status, StatusCode::OK);
    let beta = page.find(">84</a> Beta").expect("tenant 84 listed");
    let acme = page.find(">83</a> Acme").expect("tenant 83 listed");
    assert!(beta < acme, "most bytes out first: {page}");
    assert!(page.contains("<td>5.00 MiB</td>") && page.contains("<td>4.00 MiB</td>"), "{page}");
}

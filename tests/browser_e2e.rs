//! The dashboard in a real browser: headless Debian Chromium (driven by playwright-core from
//! npm, tests/browser/e2e.mjs) against the real server and a real broker. Signs in, creates a
//! tenant, activates, allowlists an address, downloads the zip, runs the zip's consumer.py, and
//! watches the group's lag on the Streaming tab rise and fall back to zero, then the usage chart
//! and the operators' ranking from what an agent reported. Screenshots of each
//! step land in `<target>/tmp/browser_e2e/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use outflow_testkit::waf_corpus::modsec_record;
use outflow_testkit::{Broker, Process, agent_token, broker_and_server, consume_with_bundle, repo_root, run_ok};

/// Waits until the splitter created `topic`.
fn eventually_partitions(broker: &Broker, topic: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while broker.partitions(topic).is_none() {
        assert!(std::time::Instant::now() < deadline, "{topic} was not created");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn records(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("198.51.100.{} - - [25/Nov/2026:06:45:12 +0000] \"GET /{tag}/{i} HTTP/1.1\" 200 512 \"browser-e2e\" hit \"text/html\" \"L1\" 0.000193 \"83\" \"-\" https ES", i % 250 + 1)).collect()
}

fn tell(stdin: &mut ChildStdin) {
    stdin.write_all(b"NEXT\n").unwrap();
    stdin.flush().unwrap();
}

#[test]
fn newcomer_goes_from_sign_in_to_consuming_in_a_real_browser() {
    let work = tempfile::tempdir().unwrap();
    let (broker, server) = broker_and_server(work.path());
    let token = server.operator_token();
    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser_e2e");
    let _ = std::fs::remove_dir_all(&out);
    let downloads = work.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();

    let browser_dir = repo_root().join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists(),
        "playwright-core missing: run `npm ci --prefix tests/browser` (ops/install-deps.sh does)"
    );
    let mut command = Command::new("node");
    command
        .arg("e2e.mjs")
        .current_dir(&browser_dir)
        .env("BASE", &server.base)
        .env("TOKEN", &token)
        .env("OUT", &out)
        .env("DOWNLOADS", &downloads)
        .stdin(Stdio::piped());
    let mut driver = Process::spawn(&mut command);
    let mut stdin = driver.stdin.take().unwrap();

    let zip = driver.wait_for("ZIP ", Duration::from_secs(180)).trim_start_matches("ZIP ").to_owned();
    let bundle = work.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    run_ok("unzip", &["-q", &zip, "-d", bundle.to_str().unwrap()], work.path());
    assert!(bundle.join("consumer.py").exists());

    let first = records("first", 20);
    broker.produce("c83", &first);
    consume_with_bundle(&bundle, &first);
    let second = records("second", 30);
    broker.produce("c83", &second);
    tell(&mut stdin);

    let lagging = driver.wait_for("LAGGING ", Duration::from_secs(90));
    let lag: i64 = lagging.trim_start_matches("LAGGING ").trim().parse().unwrap();
    assert_eq!(lag, 30, "the tab shows the records not yet consumed");
    consume_with_bundle(&bundle, &second);
    tell(&mut stdin);
    driver.wait_for("CAUGHTUP", Duration::from_secs(90));

    // WAF audit records through the real splitter into the transactional c83_waf, with more
    // access-log traffic, as with the demo running.
    let _splitter = broker.waf_splitter(&work.path().join("outflow-data"), "browser-e2e");
    eventually_partitions(&broker, "waf.audit.raw");
    let raw: Vec<(String, String)> = (0..12)
        .map(|i| {
            let record = modsec_record(
                &format!("203.0.113.{}", i + 1),
                "www.example.com",
                &format!("/search?q={i}"),
                &[
                    ("942100", "SQL Injection Attack Detected via libinjection", 2),
                    ("920350", "Host header is a numeric IP address", 4),
                ],
            );
            ("83".to_owned(), record)
        })
        .collect();
    broker.produce_keyed("waf.audit.raw", &raw);
    broker.produce("c83", &records("third", 40));
    tell(&mut stdin);
    let waf = driver.wait_for("WAF ", Duration::from_secs(120));
    let fields: Vec<&str> = waf.split_whitespace().collect();
    let (rows, live_px, page_px): (usize, f64, f64) =
        (fields[1].parse().unwrap(), fields[2].parse().unwrap(), fields[3].parse().unwrap());
    eprintln!("{waf}");
    assert_eq!(rows, 20, "the table lists the newest 20 events");
    assert!(waf.contains("CRITICAL") || waf.contains("WARNING"), "severity as a word: {waf}");
    assert!(waf.contains("GET /search?q="), "method and URI: {waf}");
    // 40 access-log lines, 20 WAF events, groups and summaries: about a screen or two, not
    // thousands of pixels (the lists scroll inside the section).
    assert!(live_px < 2000.0, "live section {live_px} px tall (page {page_px} px)");
    driver.wait_for("ALERTS", Duration::from_secs(30));

    // Usage as the broker's agent reports it (its first report is the baseline).
    let agent = agent_token(&work.path().join("outflow-data"), "kafka-1");
    for (at, value) in [(1_000, 0), (2_000, 3 << 20)] {
        let body = format!(
            r#"{{"scraped_at_ms": {at}, "counters": [{{"topic": "c83", "counter": "bytes_out", "value": {value}}}]}}"#
        );
        let url = format!("{}/api/v1/agent/usage", server.base);
        let auth = format!("Authorization: Bearer {agent}");
        let args = ["-fsS", "-X", "POST", "-H", &auth, "-H", "Content-Type: application/json", "-d", &body, &url];
        run_ok("curl", &args, work.path());
    }
    tell(&mut stdin);
    let usage = driver.wait_for("USAGE ", Duration::from_secs(60));
    eprintln!("{usage}");
    assert!(usage.starts_with("USAGE 1 83 "), "one bar, tenant 83 first: {usage}");
    assert!(usage.contains("3.00 MiB"), "{usage}");
    driver.wait_for("DONE", Duration::from_secs(30));

    let shots: Vec<_> = std::fs::read_dir(&out).unwrap().filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert_eq!(shots.len(), 13, "a screenshot per step: {shots:?}");
}

//! Every access-log format outflow knows, end to end: the real binary runs with
//! `OUTFLOW_ACCESS_LOG_FORMAT`, and the zip it serves has a Logstash grok that parses every line
//! the demo generator (`ops/demo/access_log.py`, what `ops/demo/traffic.sh` sends) writes in that
//! format, and every example line of the zip's README.txt, into exactly the fields README.txt
//! lists for that line's shape. The grok is parsed out of the rendered `kafka-logstash.conf` and
//! applied by pygrok (a grok implementation, installed by ops/install-deps.sh) through
//! `tests/access_log/grok_check.py`, which tries the patterns in order as Logstash does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;

use outflow::bundle::AccessLogFormat;
use outflow_testkit::{Server, Tenants, repo_root, unzip};
use serde_json::Value;

/// Generated lines per format: every shape of a format appears many times over.
const LINES: usize = 500;

/// What a format's lines must parse into.
struct Expected {
    /// Shape names (as README.txt names them), in the order of the grok patterns.
    shapes: &'static [&'static str],
    /// Fields that may be absent from an event (`bytes` is `-` on some lines).
    optional: &'static [&'static str],
    /// Fields that must hold integers, and numbers.
    ints: &'static [&'static str],
    floats: &'static [&'static str],
    /// The client address field, and the request and date fields.
    client: &'static str,
    request: &'static str,
    time: &'static str,
    /// The field holding the CDN's client id (the tenant id), if the format has one.
    client_id: Option<&'static str>,
}

fn expected(format: AccessLogFormat) -> Expected {
    match format {
        AccessLogFormat::Cdn => Expected {
            shapes: &["delivery", "vod", "vod-without-country"],
            optional: &["bytes"],
            ints: &["statuscode", "bytes"],
            floats: &["requesttime"],
            client: "clientip",
            request: "request",
            time: "time",
            client_id: Some("clientid"),
        },
        AccessLogFormat::CombinedExtended => Expected {
            shapes: &["line"],
            optional: &["bytes"],
            ints: &["status", "bytes"],
            floats: &["request_time"],
            client: "client_ip",
            request: "request",
            time: "timestamp",
            client_id: None,
        },
    }
}

/// The README's field list of each shape: lines `  <shape>: a, b, c` of its access-log section.
fn documented_fields(readme: &str, shapes: &[&str]) -> Vec<BTreeSet<String>> {
    shapes
        .iter()
        .map(|shape| {
            let prefix = format!("  {shape}: ");
            let line = readme
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("README.txt lists no fields for shape {shape}"));
            line[prefix.len()..].split(", ").map(str::to_owned).collect()
        })
        .collect()
}

/// The README's example lines: the indented lines after the one that announces them.
fn example_lines(readme: &str) -> Vec<String> {
    let mut lines = readme.lines().skip_while(|l| !l.contains("Example lines"));
    assert!(lines.next().is_some(), "README.txt has no example lines");
    lines.take_while(|l| l.starts_with("  ")).map(|l| l.trim_start().to_owned()).collect()
}

/// Runs the demo generator for `format`.
fn demo_lines(format: AccessLogFormat) -> Vec<String> {
    let generator = repo_root().join("ops/demo/access_log.py");
    let out = Command::new("python3")
        .arg(&generator)
        .args(["--format", format.as_str(), "--client-id", "83", "--seed", "14"])
        .args(["--count", &LINES.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", generator.display(), String::from_utf8_lossy(&out.stderr));
    let lines: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), LINES);
    lines
}

/// grok_check.py's verdict on `lines` with the grok of `conf`.
fn grok(conf: &Path, lines: &[String], work: &Path) -> Value {
    let input = work.join("lines.txt");
    std::fs::write(&input, lines.join("\n")).unwrap();
    let checker = repo_root().join("tests/access_log/grok_check.py");
    let out = Command::new("python3")
        .arg(&checker)
        .arg(conf)
        .arg(&input)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    assert!(
        out.status.success(),
        "grok_check.py failed (bash ops/install-deps.sh installs pygrok): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks one parsed line against its format's expectations; returns its shape index.
fn check_event(result: &Value, want: &Expected, fields_of: &[BTreeSet<String>]) -> usize {
    let line = result["line"].as_str().unwrap();
    let shape = result["pattern"].as_u64().unwrap_or_else(|| panic!("no grok pattern matches {line:?}")) as usize;
    let fields = result["fields"].as_object().unwrap();
    let got: BTreeSet<String> = fields.keys().cloned().collect();
    let required: BTreeSet<String> =
        fields_of[shape].iter().filter(|f| !want.optional.contains(&f.as_str())).cloned().collect();
    assert!(
        got.is_subset(&fields_of[shape]) && required.is_subset(&got),
        "{line:?} parsed as {} into {got:?}, README.txt lists {:?}",
        want.shapes[shape],
        fields_of[shape]
    );
    for name in want.ints {
        if let Some(v) = fields.get(*name) {
            assert!(v.is_i64(), "{name} of {line:?} is {v}, not an integer");
        }
    }
    for name in want.floats {
        assert!(fields[*name].is_f64(), "{name} of {line:?} is {}, not a number", fields[*name]);
    }
    let client = fields[want.client].as_str().unwrap();
    assert!(client.parse::<IpAddr>().is_ok(), "{} of {line:?} is {client:?}", want.client);
    assert!(fields[want.request].as_str().unwrap().starts_with('/'), "request of {line:?}");
    assert!(line.contains(&format!("[{}]", fields[want.time].as_str().unwrap())), "time of {line:?}");
    assert_eq!(result["time_ok"], true, "the date filter cannot read the time of {line:?}");
    if let Some(name) = want.client_id {
        assert_eq!(fields[name], "83", "client id of {line:?}");
    }
    shape
}

async fn bundle_files(format: AccessLogFormat, work: &Path) -> BTreeMap<String, String> {
    let data = work.join("data");
    let server = Server::start(&data, &[("OUTFLOW_ACCESS_LOG_FORMAT", format.as_str())]);
    let api = server.api();
    api.create_and_activate(83, "Acme").await;
    unzip(&api.bundle(83).await)
        .into_iter()
        .filter_map(|(name, bytes)| String::from_utf8(bytes).ok().map(|text| (name, text)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_bundles_grok_parses_the_demo_lines_of_every_format_into_the_documented_fields() {
    for format in AccessLogFormat::ALL {
        let work = tempfile::tempdir().unwrap();
        let files = bundle_files(format, work.path()).await;
        let (conf, readme) = (&files["kafka-logstash.conf"], &files["README.txt"]);
        let conf_path = work.path().join("kafka-logstash.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let name = format!("\"{format}\"");
        assert!(conf.contains(&name) && readme.contains(&name), "{format}: the conf and README.txt name the format");
        for file in ["filebeat.yml", "consumer.py"] {
            assert!(files[file].contains(&format!("in the {format} format")), "{format}: {file} names the format");
        }

        let want = expected(format);
        let fields_of = documented_fields(readme, want.shapes);
        let examples = example_lines(readme);
        assert!(examples.len() >= want.shapes.len(), "{format}: README.txt shows an example of each shape");
        let lines = [examples.clone(), demo_lines(format)].concat();
        let verdict = grok(&conf_path, &lines, work.path());
        assert_eq!(verdict["patterns"].as_array().unwrap().len(), want.shapes.len(), "{format}: grok patterns");
        assert_eq!(verdict["date"]["field"], want.time, "{format}: the date filter reads the time");

        let mut per_shape = vec![0; want.shapes.len()];
        for (i, result) in verdict["results"].as_array().unwrap().iter().enumerate() {
            let shape = check_event(result, &want, &fields_of);
            if i < examples.len() && want.shapes.len() > 1 {
                assert_eq!(shape, i, "{format}: README.txt example {i} is a {} line", want.shapes[i]);
            }
            per_shape[shape] += 1;
        }
        let counts: Vec<_> = want.shapes.iter().zip(&per_shape).collect();
        assert!(per_shape.iter().all(|&n| n > 10), "{format}: every shape is generated, got {counts:?}");
        eprintln!("{format}: {} lines parsed, by shape {counts:?}", lines.len());
    }
}

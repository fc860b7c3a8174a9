//! Hostile tenant names against the bundle: a name is data in five languages (Python, YAML,
//! Logstash config, kcat properties, plain text) and must stay data in each of them.
//!
//! Two layers: the library renders the configs for every hostile name (including the ones the
//! API refuses) and compares them with a plain name's; the real binary serves zips for the
//! names it accepts, and their `consumer.py` runs against a bogus bootstrap.

use std::path::Path;
use std::process::{Command, Stdio};

use outflow::bundle::{self, BundleData};
use outflow_testkit::{Server, Tenants, free_port, run, unzip};

/// Names built around the fragments that break out of a string, a comment or a line.
fn hostile_names() -> Vec<String> {
    [
        r#"Acme """ + __import__("os").system("echo PWNED") + """"#,
        r#"Acme ''' + __import__("os").system("echo PWNED") + '''"#,
        r"Acme \U0001 corp",
        r"Acme \",
        r"\",
        "Acme ${HOME} ${x}",
        "Acme %{x} %{[message]}",
        "Acme\nbootstrap.servers=evil.example:9093",
        "Acme\r\nimport os; os.system('echo PWNED')",
        "Acme # not a comment",
        "Acme: corp: {x: 1}",
        r#"Acme "corp""#,
        "Acme 'corp'",
        "Acme {{ b.password }}",
        "Acme }} {%",
        "Ácmé 日本語 ☃ 🦀",
        "Acme \u{202e}gnp.exe",
        "Acme \u{2028}next line",
        "Acme \u{0}nul",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

fn data(name: &str, dir: &Path) -> BundleData {
    BundleData {
        tenant_id: 83,
        tenant_name: name.to_owned(),
        cn: "c83.1".into(),
        not_after: "2027-12-02T00:00:00Z".into(),
        topic: "c83".into(),
        waf_topic: "c83_waf".into(),
        group_prefix: "c83_".into(),
        group_filebeat: "c83_filebeat".into(),
        group_logstash: "c83_logstash".into(),
        group_python: "c83_python".into(),
        group_kcat: "c83_kcat".into(),
        brokers: vec!["kafka1.cdn.example:9093".into(), "kafka2.cdn.example:9093".into()],
        ca_name: "transparentcdnCA".into(),
        ca_file: "transparentcdnCA.pem".into(),
        cert_file: "c83.crt.pem".into(),
        key_file: "c83.key.pem".into(),
        keystore_file: "c83.keystore.p12".into(),
        truststore_file: "truststore.p12".into(),
        password: "Zm9vYmFy-secret".into(),
        filebeat_dir: dir.join("filebeat").display().to_string(),
        logstash_dir: "/etc/logstash/outflow".into(),
        access_log_format: bundle::AccessLogFormat::Cdn,
    }
}

fn text(files: &[(String, Vec<u8>)], name: &str) -> String {
    let bytes = &files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing")).1;
    String::from_utf8(bytes.clone()).unwrap()
}

/// Lines that are settings, not comments or blank.
fn setting_lines(file: &str) -> Vec<&str> {
    file.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).collect()
}

/// Python: parse consumer.py and print the TENANT literal and a dump of the module with the
/// TENANT value blanked, so two renderings can be compared.
const PY_INSPECT: &str = r#"
import ast, json, sys
tree = ast.parse(open(sys.argv[1], encoding="utf-8").read())
tenant = None
for node in tree.body:
    if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["TENANT"]:
        tenant = ast.literal_eval(node.value)
        node.value = ast.Constant("")
print(json.dumps({"tenant": tenant, "dump": ast.dump(tree)}))
"#;

fn inspect_python(path: &Path) -> serde_json::Value {
    let out = Command::new("python3").arg("-c").arg(PY_INSPECT).arg(path).output().unwrap();
    assert!(out.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_config_keeps_a_hostile_name_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let plain = bundle::configs(&data("Acme", dir.path())).unwrap();
    let plain_py = dir.path().join("plain.py");
    std::fs::write(&plain_py, text(&plain, "consumer.py")).unwrap();
    let plain_inspected = inspect_python(&plain_py);
    let plain_yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text(&plain, "filebeat.yml")).unwrap();

    for (i, name) in hostile_names().iter().enumerate() {
        let files = bundle::configs(&data(name, dir.path())).unwrap();
        let py = dir.path().join(format!("consumer{i}.py"));
        std::fs::write(&py, text(&files, "consumer.py")).unwrap();
        let inspected = inspect_python(&py);
        assert_eq!(inspected["tenant"], format!("c83 ({name})"), "{name:?}: TENANT holds the name exactly");
        assert_eq!(inspected["dump"], plain_inspected["dump"], "{name:?}: consumer.py's code is unchanged");

        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text(&files, "filebeat.yml"))
            .unwrap_or_else(|e| panic!("{name:?}: filebeat.yml is not YAML: {e}"));
        assert_eq!(yaml, plain_yaml, "{name:?}: filebeat.yml has the plain name's values");

        for file in ["kcat.conf", "kafka-logstash.conf"] {
            let (ours, theirs) = (text(&files, file), text(&plain, file));
            assert_eq!(setting_lines(&ours), setting_lines(&theirs), "{name:?}: {file} keeps its settings");
            assert_eq!(ours.lines().count(), theirs.lines().count(), "{name:?}: {file} keeps one setting per line");
        }
        let readme = text(&files, "README.txt");
        assert_eq!(readme.lines().count(), text(&plain, "README.txt").lines().count(), "{name:?}: README lines");
        for (file, body) in &files {
            let body = String::from_utf8_lossy(body);
            let hidden = body.chars().find(|&c| outflow::bundle::escape::is_hazard(c) && c != '\n');
            assert_eq!(hidden, None, "{name:?}: {file} carries no raw control or bidi character");
        }
    }
}

#[test]
fn values_a_format_cannot_hold_stop_the_render() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = data("Acme", dir.path());
    d.logstash_dir = "/etc/\"logstash\"".into();
    assert!(bundle::configs(&d).is_err(), "a quote in a Logstash value");
    let mut d = data("Acme", dir.path());
    d.password = "pw\nbootstrap.servers=evil:9093".into();
    assert!(bundle::configs(&d).is_err(), "a line break in a kcat value");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_served_consumer_py_runs_as_written_whatever_the_name() {
    let data_dir = tempfile::tempdir().unwrap();
    // Nothing listens on the bootstrap port: consumer.py must fail with its own message.
    let bogus = format!("127.0.0.1:{}", free_port());
    let server = Server::start(data_dir.path(), &[("OUTFLOW_BROKERS", bogus.as_str())]);
    let api = server.api();
    let (token, client) = (&api.token, &api.client);

    let refused = hostile_names()
        .into_iter()
        .filter(|n| n.chars().any(outflow::bundle::escape::is_hazard))
        .chain(["x".repeat(101)])
        .collect::<Vec<_>>();
    for name in &refused {
        let resp = client
            .post(format!("{}/api/v1/tenants", server.base))
            .bearer_auth(token)
            .json(&serde_json::json!({"id": 99, "name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 422, "{name:?} is refused");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["field"], "name", "{name:?}: {body}");
    }

    let accepted: Vec<String> =
        hostile_names().into_iter().filter(|n| !n.chars().any(outflow::bundle::escape::is_hazard)).collect();
    let work = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for (i, name) in accepted.iter().enumerate() {
        let id = 100 + i as i64;
        api.create_and_activate(id, name).await;
        let zip = api.bundle(id).await;
        let dir = work.path().join(format!("c{id}"));
        std::fs::create_dir(&dir).unwrap();
        for (file, bytes) in unzip(&zip) {
            std::fs::write(dir.join(file), bytes).unwrap();
        }
        let parsed =
            run("python3", &["-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", "consumer.py"], &dir);
        assert!(parsed.status.success(), "{name:?}: {}", String::from_utf8_lossy(&parsed.stderr));
        let child = Command::new("python3")
            .arg("consumer.py")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        runs.push((id, name.clone(), child));
    }
    // All run at once: each waits for the unreachable brokers before giving up.
    for (id, name, child) in runs {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name:?}: exits with its error\n{stderr}");
        assert!(stdout.is_empty(), "{name:?}: prints nothing on stdout, got {stdout:?}");
        let own = format!("consumer.py (c{id} ({name})): cannot read topic c{id} from {bogus}:");
        assert!(stderr.contains(&own), "{name:?}: its own error, got\n{stderr}");
        for line in stderr.lines() {
            // librdkafka's own log lines start with `%<level>|`.
            let expected = line.starts_with(&own) || line.starts_with("Check that") || line.starts_with('%');
            assert!(expected, "{name:?}: unexpected output {line:?}");
        }
        // The payloads `echo PWNED`: had one run, a line of its own would say so.
        assert!(!stderr.lines().any(|l| l.trim() == "PWNED") && !stderr.contains("Traceback"), "{name:?}:\n{stderr}");
    }
}

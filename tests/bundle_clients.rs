//! The download zip, checked with the tools customers use: OpenSSL 3 (no legacy provider),
//! Java keytool, Python confluent-kafka, and an mTLS handshake against `openssl s_server`.
//! Drives the real binary end to end.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use outflow_testkit::{Process, Server, Tenants, free_port, outflow, run, run_ok, unzip};

const BROKERS: &str = "kafka1.cdn.example:9093,kafka2.cdn.example:9093";

async fn download_bundle(server: &Server, tenant: i64) -> Vec<u8> {
    let api = server.api();
    api.create_and_activate(tenant, "Acme Streaming").await;
    api.bundle(tenant).await
}

fn extract(files: &BTreeMap<String, Vec<u8>>, dir: &Path) {
    for (name, data) in files {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_bundle_works_with_real_clients() {
    check_bundle_with_real_clients(&[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_bundle_works_with_real_clients() {
    check_bundle_with_real_clients(&[
        ("OUTFLOW_CA_KEY_ALGORITHM", "rsa-3072"),
        ("OUTFLOW_CREDENTIAL_KEY_ALGORITHM", "rsa-2048"),
    ])
    .await;
}

async fn check_bundle_with_real_clients(extra_env: &[(&str, &str)]) {
    let data = tempfile::tempdir().unwrap();
    let mut env = vec![("OUTFLOW_BROKERS", BROKERS), ("OUTFLOW_CA_NAME", "transparentcdnCA")];
    env.extend_from_slice(extra_env);
    let server = Server::start(data.path(), &env);
    let files = unzip(&download_bundle(&server, 83).await);

    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    let mut expected = vec![
        "README.txt",
        "c83.crt.pem",
        "c83.key.pem",
        "c83.keystore.p12",
        "consumer.py",
        "filebeat.yml",
        "kafka-logstash.conf",
        "kcat.conf",
        "password.txt",
        "transparentcdnCA.pem",
        "truststore.p12",
    ];
    expected.sort();
    assert_eq!(names, expected);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    extract(&files, d);
    let password = String::from_utf8(files["password.txt"].clone()).unwrap().trim().to_owned();
    assert!(password.len() >= 20, "password too short: {password:?}");

    // PKCS#12 files open with OpenSSL 3's default provider (no -legacy).
    for p12 in ["c83.keystore.p12", "truststore.p12"] {
        let info = run_ok("openssl", &["pkcs12", "-info", "-noout", "-in", p12, "-passin", "file:password.txt"], d);
        assert!(info.contains("AES-256-CBC"), "{p12}: {info}");
        let wrong = run("openssl", &["pkcs12", "-info", "-noout", "-in", p12, "-passin", "pass:wrong-password"], d);
        assert!(!wrong.status.success(), "{p12} opened with a wrong password");
    }

    // The key PEM is encrypted PKCS#8, opens with password.txt, and matches the certificate.
    let key_pem = String::from_utf8(files["c83.key.pem"].clone()).unwrap();
    assert!(key_pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"), "{key_pem}");
    let key_pub = run_ok("openssl", &["pkey", "-in", "c83.key.pem", "-passin", "file:password.txt", "-pubout"], d);
    let cert_pub = run_ok("openssl", &["x509", "-in", "c83.crt.pem", "-noout", "-pubkey"], d);
    assert_eq!(key_pub, cert_pub, "key does not match certificate");
    assert!(!run("openssl", &["pkey", "-in", "c83.key.pem", "-passin", "pass:nope", "-noout"], d).status.success());

    let verify = run_ok("openssl", &["verify", "-CAfile", "transparentcdnCA.pem", "c83.crt.pem"], d);
    assert!(verify.contains("c83.crt.pem: OK"), "{verify}");
    let text = run_ok(
        "openssl",
        &["x509", "-in", "c83.crt.pem", "-noout", "-subject", "-ext", "extendedKeyUsage,basicConstraints"],
        d,
    );
    assert!(text.contains("subject=CN = c83.1") || text.contains("subject=CN=c83.1"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    let ca_text = run_ok("openssl", &["x509", "-in", "transparentcdnCA.pem", "-noout", "-subject", "-enddate"], d);
    assert!(ca_text.contains("transparentcdnCA"), "{ca_text}");

    // Java sees a private key entry with its chain, and a trusted CA entry.
    let ks = run_ok(
        "keytool",
        &["-list", "-v", "-storetype", "PKCS12", "-keystore", "c83.keystore.p12", "-storepass", &password],
        d,
    );
    assert!(ks.contains("Entry type: PrivateKeyEntry"), "{ks}");
    assert!(ks.contains("Certificate chain length: 2"), "{ks}");
    assert!(ks.contains("CN=c83.1"), "{ks}");
    let ts = run_ok(
        "keytool",
        &["-list", "-storetype", "PKCS12", "-keystore", "truststore.p12", "-storepass", &password],
        d,
    );
    assert!(ts.contains("trustedCertEntry"), "{ts}");
    assert!(ts.contains("contains 1 entry"), "{ts}");

    check_templates(&files, &password);
    check_python_consumer(d);
    check_mtls_handshake(&server, d);
}

/// Each template names the right topic, group, port and paths, and parses in its own language.
fn check_templates(files: &BTreeMap<String, Vec<u8>>, password: &str) {
    let text = |name: &str| String::from_utf8(files[name].clone()).unwrap();

    let filebeat: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text("filebeat.yml")).expect("filebeat.yml is YAML");
    let input = &filebeat["filebeat.inputs"][0];
    assert_eq!(input["type"], "kafka");
    let hosts: Vec<&str> = input["hosts"].as_sequence().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
    assert_eq!(hosts, ["kafka1.cdn.example:9093", "kafka2.cdn.example:9093"]);
    assert_eq!(input["topics"][0], "c83");
    assert_eq!(input["group_id"], "c83_filebeat");
    assert_eq!(input["ssl.certificate"], "/etc/filebeat/outflow/c83.crt.pem");
    assert_eq!(input["ssl.key"], "/etc/filebeat/outflow/c83.key.pem");
    assert_eq!(input["ssl.certificate_authorities"][0], "/etc/filebeat/outflow/transparentcdnCA.pem");
    assert_eq!(input["ssl.key_passphrase"], password);

    let logstash = text("kafka-logstash.conf");
    for needle in [
        "bootstrap_servers => \"kafka1.cdn.example:9093,kafka2.cdn.example:9093\"",
        "topics => [\"c83\"]",
        "group_id => \"c83_logstash\"",
        "security_protocol => \"SSL\"",
        "ssl_keystore_location => \"/etc/logstash/outflow/c83.keystore.p12\"",
        "ssl_truststore_location => \"/etc/logstash/outflow/truststore.p12\"",
        &format!("ssl_keystore_password => \"{password}\""),
        &format!("ssl_truststore_password => \"{password}\""),
        "%{HTTPDATE:time}",
    ] {
        assert!(logstash.contains(needle), "kafka-logstash.conf lacks {needle}");
    }
    assert_eq!(
        logstash.matches('{').count(),
        logstash.matches('}').count(),
        "unbalanced braces in kafka-logstash.conf"
    );

    let consumer = text("consumer.py");
    for needle in [
        "BOOTSTRAP_SERVERS = \"kafka1.cdn.example:9093,kafka2.cdn.example:9093\"",
        "TOPIC = \"c83\"",
        "GROUP_ID = \"c83_python\"",
        "\"c83.keystore.p12\"",
        "\"transparentcdnCA.pem\"",
        &format!("PASSWORD = \"{password}\""),
    ] {
        assert!(consumer.contains(needle), "consumer.py lacks {needle}");
    }

    let kcat: BTreeMap<String, String> = text("kcat.conf")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("key=value");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(kcat["bootstrap.servers"], "kafka1.cdn.example:9093,kafka2.cdn.example:9093");
    assert_eq!(kcat["security.protocol"], "ssl");
    assert_eq!(kcat["ssl.certificate.location"], "c83.crt.pem");
    assert_eq!(kcat["ssl.key.location"], "c83.key.pem");
    assert_eq!(kcat["ssl.ca.location"], "transparentcdnCA.pem");
    assert_eq!(kcat["ssl.key.password"], password);
    assert!(kcat["group.id"].starts_with("c83_"));

    let readme = text("README.txt");
    for needle in [
        "c83",
        "c83_waf",
        "c83_",
        "kafka1.cdn.example:9093",
        "Proc-Type: 4,ENCRYPTED",
        "same group id",
        "message-count: ",
    ] {
        assert!(readme.contains(needle), "README.txt lacks {needle}");
    }
}

/// consumer.py compiles, and confluent-kafka builds a Consumer from its settings (which loads
/// and decrypts the keystore); a wrong password is refused, so the check can fail.
fn check_python_consumer(dir: &Path) {
    run_ok("python3", &["-m", "py_compile", "consumer.py"], dir);
    let script = r#"
import importlib.util, sys
from confluent_kafka import Consumer, KafkaException
spec = importlib.util.spec_from_file_location("consumer", "consumer.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
settings = module.settings()
assert settings["ssl.keystore.location"].endswith("c83.keystore.p12"), settings
Consumer(settings).close()
try:
    Consumer(dict(settings, **{"ssl.keystore.password": "wrong"}))
except KafkaException as e:
    print("wrong password refused:", e)
else:
    sys.exit("a wrong keystore password was accepted")
print("consumer built")
"#;
    let out = run_ok("python3", &["-c", script], dir);
    assert!(out.contains("consumer built") && out.contains("wrong password refused"), "{out}");
}

/// Mutual TLS against `openssl s_server -Verify` with a server certificate from the same CA:
/// the bundle's certificate is accepted and shows CN c83.1; one from another CA is refused.
fn check_mtls_handshake(server: &Server, dir: &Path) {
    let srv = dir.join("srv");
    outflow(
        &server.dir,
        &[],
        &["ca", "issue-server", "--host", "localhost", "--host", "127.0.0.1", "--out", srv.to_str().unwrap()],
    );

    let (accepted, server_log) =
        handshake(&srv, dir, &["-cert", "c83.crt.pem", "-key", "c83.key.pem", "-pass", "file:password.txt"]);
    assert!(accepted, "handshake with the bundle's certificate failed:\n{server_log}");
    assert!(server_log.contains("subject=CN = c83.1") || server_log.contains("subject=CN=c83.1"), "{server_log}");
    assert!(server_log.contains("hello from c83"), "{server_log}");

    run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=c83.1",
            "-keyout",
            "other.key",
            "-out",
            "other.crt",
            "-days",
            "1",
        ],
        dir,
    );
    let (accepted, server_log) = handshake(&srv, dir, &["-cert", "other.crt", "-key", "other.key"]);
    assert!(!accepted, "a certificate from another CA was accepted:\n{server_log}");
    assert!(server_log.contains("verify error"), "{server_log}");
}

/// One s_server/s_client exchange; returns whether the client got through and the server's log.
fn handshake(srv: &Path, dir: &Path, client_cred: &[&str]) -> (bool, String) {
    let port = free_port().to_string();
    let mut s_server = Process::spawn(
        Command::new("openssl")
            .args([
                "s_server",
                "-accept",
                &format!("127.0.0.1:{port}"),
                "-naccept",
                "1",
                "-Verify",
                "1",
                "-verify_return_error",
            ])
            .arg("-cert")
            .arg(srv.join("server.crt.pem"))
            .arg("-key")
            .arg(srv.join("server.key.pem"))
            .arg("-CAfile")
            .arg(srv.join("ca.pem"))
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // s_server prints ACCEPT once it listens.
    let mut log = String::new();
    loop {
        let line = s_server.next_line(Duration::from_secs(10)).expect("s_server did not start listening");
        log.push_str(&line);
        log.push('\n');
        if line == "ACCEPT" {
            break;
        }
    }
    let mut s_client = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "localhost",
            "-verify_return_error",
        ])
        .args(["-CAfile", "srv/ca.pem"])
        .args(client_cred)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // TLS 1.3 sends the client certificate after the server's Finished: give it time before EOF.
    std::thread::sleep(Duration::from_millis(700));
    let _ = s_client.stdin.as_mut().unwrap().write_all(b"hello from c83\n");
    std::thread::sleep(Duration::from_millis(700));
    drop(s_client.stdin.take());
    let client = s_client.wait_with_output().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s_server.stdin.take());
    let (lines, stderr) = s_server.finish();
    log.extend(lines.into_iter().map(|l| l + "\n"));
    log.push_str(&stderr);
    let client_text = String::from_utf8_lossy(&client.stdout).to_string() + &String::from_utf8_lossy(&client.stderr);
    let accepted = client.status.success() && !client_text.contains("alert");
    (accepted, log)
}

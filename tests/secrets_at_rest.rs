//! Nothing secret is stored in the clear: after issuing credentials, importing a CA and creating
//! tokens, no file under the data dir contains a private key, a bundle password or a token.

use std::path::Path;

use base64::Engine;
use outflow::tenants::TenantId;
use outflow::tenants::credentials;
use outflow_testkit::{Server, Tenants, outflow, run_ok, spawn_app_with, unzip};
use reqwest::Method;

/// The 32-byte private scalar inside an EC PKCS#8 DER (ECPrivateKey: version 1, then the key).
fn ec_scalar(pkcs8: &[u8]) -> Vec<u8> {
    let at = pkcs8.windows(5).position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20]).expect("EC private key");
    pkcs8[at + 5..at + 37].to_vec()
}

/// The data dir's files and the database's (SQLite's file, or the PostgreSQL database's files).
async fn data_files(app: &outflow_testkit::TestApp) -> Vec<(String, Vec<u8>)> {
    outflow_testkit::storage_files(&app.state, app.dir.path())
        .await
        .into_iter()
        .filter_map(|p| Some((p.display().to_string(), std::fs::read(&p).ok()?)))
        .collect()
}

fn assert_absent(files: &[(String, Vec<u8>)], what: &str, needle: &[u8]) {
    assert!(needle.len() >= 16, "{what}: needle too short to be meaningful");
    for (name, bytes) in files {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "{what} found in plaintext in {name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_secrets_in_the_data_dir() {
    let work = tempfile::tempdir().unwrap();

    // An imported CA whose key we know.
    run_ok(
        "openssl",
        &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"],
        work.path(),
    );
    run_ok(
        "openssl",
        &[
            "req",
            "-x509",
            "-key",
            "ca.key",
            "-subj",
            "/CN=importedCA",
            "-days",
            "30",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        work.path(),
    );
    let ca_key_pem = std::fs::read_to_string(work.path().join("ca.key")).unwrap();
    let ca_cert_pem = std::fs::read_to_string(work.path().join("ca.crt")).unwrap();
    // Imported with the CLI before the server first starts, as an operator would.
    let app = spawn_app_with(|config| {
        let url = config.database_url();
        let mut env = vec![("OUTFLOW_DATABASE_URL", url.as_str())];
        env.extend(config.kek.as_deref().map(|kek| ("OUTFLOW_KEK", kek)));
        let out = outflow(
            &config.data_dir,
            &env,
            &[
                "ca",
                "import",
                "--cert",
                &work.path().join("ca.crt").display().to_string(),
                "--key",
                &work.path().join("ca.key").display().to_string(),
                "--name",
                "importedCA",
            ],
        );
        assert!(out.contains("Imported CA"), "{out}");
    })
    .await;
    let ca_der = outflow::pki::ca::pem_to_der(&ca_key_pem, "PRIVATE KEY").unwrap();

    app.create_and_activate(83, "Acme").await;
    app.op(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    let tenant = TenantId::parse(83).unwrap();
    let second = credentials::newest_active(&app.state.store, &app.state.issuer, tenant).await.unwrap().unwrap();
    assert_eq!(second.row.cn, "c83.2");
    app.op(Method::DELETE, "/api/v1/tenants/83/credentials/2", None).await;
    let first = credentials::newest_active(&app.state.store, &app.state.issuer, tenant).await.unwrap().unwrap();
    assert_eq!(first.row.cn, "c83.1");

    // An alert channel's signing secret and a Slack URL (itself a secret).
    let slack_url = "https://93.184.215.14/services/T0SECRET/B0SECRET/xoxSlackPathSecret";
    let (_, slack) = app
        .op(
            Method::POST,
            "/api/v1/tenants/83/alert-channels",
            Some(serde_json::json!({"kind": "slack", "name": "s", "url": slack_url})),
        )
        .await;
    assert_eq!(slack["url"], "https://93.184.215.14/…", "{slack}");
    let (_, hook) = app
        .op(
            Method::POST,
            "/api/v1/tenants/83/alert-channels",
            Some(serde_json::json!({"kind": "webhook", "name": "w", "url": "https://93.184.215.14/hook"})),
        )
        .await;
    let signing_secret = hook["secret"].as_str().unwrap().to_owned();

    let files = data_files(&app).await;
    assert_absent(&files, "Slack URL", b"xoxSlackPathSecret");
    assert_absent(&files, "webhook signing secret", signing_secret.as_bytes());
    assert!(
        files.iter().any(|(n, _)| n.ends_with("outflow.db") || n.contains("/base/")),
        "the database's own files are searched"
    );
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der).as_bytes()[..48].to_vec();

    assert_absent(&files, "CA private key (PKCS#8)", &ca_der);
    assert_absent(&files, "CA private key (PEM body)", &b64(&ca_der));
    assert_absent(&files, "CA private scalar", &ec_scalar(&ca_der));
    for secrets in [&first, &second] {
        let cn = &secrets.row.cn;
        assert_absent(&files, &format!("{cn} private key (PKCS#8)"), &secrets.key.pkcs8_der);
        assert_absent(&files, &format!("{cn} private key (PEM body)"), &b64(&secrets.key.pkcs8_der));
        assert_absent(&files, &format!("{cn} private scalar"), &ec_scalar(&secrets.key.pkcs8_der));
        assert_absent(&files, &format!("{cn} password"), secrets.password.as_bytes());
    }
    assert_absent(&files, "operator token", app.operator.as_bytes());
    assert_absent(&files, "agent token", app.agent.as_bytes());

    // The checks above are not vacuous: the certificates themselves are stored.
    let stored = files.iter().any(|(_, b)| b.windows(first.row.serial.len()).any(|w| w == first.row.serial.as_bytes()));
    assert!(stored, "expected the credential rows in the data dir");

    // And the bundle built from the imported CA carries it.
    let bundle = unzip(&app.bundle(83).await);
    assert_eq!(
        bundle["importedCA.pem"],
        ca_cert_pem.trim().as_bytes().iter().chain(b"\n").copied().collect::<Vec<u8>>()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_data_dir_and_its_files_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let work = tempfile::tempdir().unwrap();
    // A new data dir, and one that already exists with the usual 0755.
    let fresh = work.path().join("fresh/data");
    let existing = work.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o755)).unwrap();
    for dir in [&fresh, &existing] {
        let server = Server::start(dir, &[]);
        let token = server.operator_token();
        let created = reqwest::Client::new()
            .post(format!("{}/api/v1/tenants", server.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({"id": 83, "name": "Acme"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
        let files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for expected in ["outflow.db", "outflow.db-wal", "outflow.db-shm", "kek.key"] {
            assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
        }
        for file in files {
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
    }
}

/// `outflow <args>` expected to fail; its stderr.
fn outflow_fails(data: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = std::process::Command::new(outflow_testkit::outflow_bin())
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "outflow {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An API client for `server` with a new operator token.
fn operator_api(server: &Server, env: &[(&str, &str)], name: &str) -> outflow_testkit::Api {
    let out = outflow(&server.dir, env, &["token", "create", "--role", "operator", "--name", name]);
    outflow_testkit::Api::new(&server.base, out.lines().last().unwrap().trim().to_owned())
}

/// `outflow kek rotate`: with the new key as OUTFLOW_KEK and the old one as OUTFLOW_KEK_PREVIOUS,
/// every sealed value is re-sealed; the server then runs on the new key alone, and the old key
/// opens nothing any more.
#[tokio::test(flavor = "multi_thread")]
async fn the_kek_rotates_and_the_old_key_stops_opening_anything() {
    const OLD: &str = outflow_testkit::TEST_KEK;
    const NEW: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let url = outflow_testkit::fresh_database_url(work.path());
    let old = [("OUTFLOW_DATABASE_URL", url.as_str()), ("OUTFLOW_KEK", OLD)];
    let new = [("OUTFLOW_DATABASE_URL", url.as_str()), ("OUTFLOW_KEK", NEW)];
    let rotating = [new[0], new[1], ("OUTFLOW_KEK_PREVIOUS", OLD)];

    let server = Server::start(&data, &old);
    let api = operator_api(&server, &old, "ops");
    api.create_and_activate(83, "Acme").await;
    api.call_ok(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    let before = unzip(&api.bundle(83).await);
    // A webhook channel with a rotated secret: its URL, secret and previous secret are sealed.
    let channels = "/api/v1/tenants/83/alert-channels";
    let hook = serde_json::json!({"kind": "webhook", "name": "w", "url": "https://93.184.215.14/hook"});
    let hook = api.call_ok(Method::POST, channels, Some(hook)).await;
    let hook_path = format!("{channels}/{}", hook["id"]);
    api.call_ok(Method::PATCH, &hook_path, Some(serde_json::json!({"rotate_secret": true}))).await;
    drop(server);

    // A rotation needs the old key to open what it sealed.
    let refused = outflow_fails(&data, &new, &["kek", "rotate"]);
    assert!(refused.contains("cannot decrypt"), "{refused}");
    let out = outflow(&data, &rotating, &["kek", "rotate"]);
    // The CA key, a key and a password for each of the two credentials, and the channel's URL,
    // secret and previous secret.
    assert!(out.contains("Re-sealed 8 values with the current KEK (8 were sealed with the previous one)"), "{out}");
    let again = outflow(&data, &rotating, &["kek", "rotate"]);
    assert!(again.contains("(0 were sealed with the previous one)"), "{again}");

    // The new key alone opens everything: the same bundle secrets come out.
    let server = Server::start(&data, &new);
    let api = operator_api(&server, &new, "ops2");
    let after = unzip(&api.bundle(83).await);
    assert_eq!(before["password.txt"], after["password.txt"]);
    assert_eq!(before["c83.crt.pem"], after["c83.crt.pem"]);
    // The key PEM is encrypted afresh (new salt) for each download; the key inside is the same.
    let plain_key = |files: &std::collections::BTreeMap<String, Vec<u8>>, name: &str| {
        let dir = work.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("key.pem"), &files["c83.key.pem"]).unwrap();
        std::fs::write(dir.join("password.txt"), &files["password.txt"]).unwrap();
        run_ok("openssl", &["pkey", "-in", "key.pem", "-passin", "file:password.txt"], &dir)
    };
    assert_eq!(plain_key(&before, "before"), plain_key(&after, "after"));
    let reopened = api.call_ok(Method::GET, &hook_path, None).await;
    assert_eq!(reopened["url"], "https://93.184.215.14/hook");
    api.call_ok(Method::POST, "/api/v1/tenants/83/credentials", None).await;
    drop(server);

    // The old key alone no longer opens the CA.
    let stale = outflow_fails(&data, &old, &["ca", "show"]);
    assert!(stale.contains("cannot decrypt"), "{stale}");
}

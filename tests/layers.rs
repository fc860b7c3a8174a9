//! The layer rules of the codebase, checked on the source: the domain folders know nothing of
//! HTTP or the application state, SQL lives only in the store, and `pki` is pure signing.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Files under `folders` whose text contains any of `needles`, as "file: needle".
fn offenders(folders: &[&str], needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for folder in folders {
        let dir = src().join(folder);
        assert!(dir.is_dir(), "{} is missing", dir.display());
        for file in sources(&dir) {
            let text = std::fs::read_to_string(&file).unwrap();
            for needle in needles {
                if text.contains(needle) {
                    found.push(format!("{}: {needle}", file.strip_prefix(src()).unwrap().display()));
                }
            }
        }
    }
    found
}

#[test]
fn domain_folders_import_no_edge_or_state() {
    // The seven folders the issue names, and `auth`, which is domain too.
    let domain = ["tenants", "pki", "firewall", "kafka", "waf", "audit", "bundle", "auth"];
    let found = offenders(&domain, &["crate::state", "crate::app", "axum", "crate::http"]);
    assert!(found.is_empty(), "the domain imports the edge: {found:#?}");
}

#[test]
fn sql_is_only_in_the_store() {
    let mut found = Vec::new();
    for file in sources(&src()) {
        let relative = file.strip_prefix(src()).unwrap();
        if relative.starts_with("store") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in ["sqlx::query", "query_as(", "QueryBuilder"] {
            if text.contains(needle) {
                found.push(format!("{}: {needle}", relative.display()));
            }
        }
    }
    assert!(found.is_empty(), "SQL outside server/src/store: {found:#?}");
}

#[test]
fn pki_is_pure_signing() {
    let found = offenders(&["pki"], &["crate::store", "crate::kafka", "crate::tenants"]);
    assert!(found.is_empty(), "pki reaches beyond signing and sealing: {found:#?}");
}

/// The checks above would pass on an empty tree: make sure they read the real one.
#[test]
fn the_checks_see_the_code() {
    assert!(offenders(&["store"], &["sqlx::query"]).len() >= 8);
    assert!(!offenders(&["kafka"], &["rdkafka"]).is_empty());
}

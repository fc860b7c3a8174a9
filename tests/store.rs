//! The store on its own: every function against a throwaway SQLite database, with the signals
//! its commits raise. No HTTP, no Kafka.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use outflow::auth::Role;
use outflow::pki::SealedCredential;
use outflow::signals::Signals;
use outflow::store::credentials::Change as CredentialChange;
use outflow::store::firewall::{self, AgentReport, Change, Target};
use outflow::store::tenants::{self, Activation, Deletion, PartitionChange};
use outflow::store::{Backend, Store, audit, ca, credentials, lease, login, metrics, reconcile, tokens, users};
use outflow::tenants::{Partitions, TenantId, TenantName};

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = outflow_testkit::fresh_database_url(dir.path());
    let store = Store::open(&url, Arc::new(Signals::default())).await.unwrap();
    assert_eq!(store.backend() == Backend::Postgres, outflow_testkit::on_postgres(), "the backend asked for");
    (store, dir)
}

fn id(n: i64) -> TenantId {
    TenantId::parse(n).unwrap()
}

fn sealed(cn: &str) -> SealedCredential {
    SealedCredential {
        cn: cn.into(),
        serial: cn.into(),
        algorithm: "ecdsa-p256".into(),
        not_before: 0,
        not_after: i64::MAX / 2,
        cert_pem: "PEM".into(),
        key_sealed: vec![1, 2],
        password_sealed: vec![3],
    }
}

async fn tenant(store: &Store, n: i64) {
    tenants::create(store, id(n), &TenantName::parse("Acme").unwrap(), &[]).await.unwrap();
}

#[tokio::test]
async fn tenants_activation_partitions_and_deletion() {
    let (store, _dir) = store().await;
    tenant(&store, 83).await;
    assert!(tenants::create(&store, id(83), &TenantName::parse("Again").unwrap(), &[]).await.is_err(), "id taken");
    assert_eq!(tenants::list(&store).await.unwrap().len(), 1);
    assert!(tenants::find(&store, id(84)).await.unwrap().is_none());
    assert_eq!(tenants::activity(&store).await.unwrap(), vec![(83, false)]);

    let mut desired = std::pin::pin!(store.signals().desired_notified());
    assert!(futures_ready(&mut desired).is_none());
    match tenants::activate(&store, id(83), |k| Ok(sealed(&format!("c83.{k}")))).await.unwrap() {
        Activation::Activated { k } => assert_eq!(k, 1),
        other => panic!("{other:?}"),
    }
    assert!(futures_ready(&mut desired).is_some(), "activation wakes the reconciler");
    assert!(matches!(tenants::activate(&store, id(83), |_| unreachable!()).await.unwrap(), Activation::AlreadyActive));
    assert!(matches!(tenants::activate(&store, id(9), |_| unreachable!()).await.unwrap(), Activation::NotFound));

    let streaming = tenants::streaming(&store, id(83)).await.unwrap().unwrap();
    assert!(streaming.tenant.streaming_active);
    assert_eq!(streaming.topics.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["c83", "c83_waf"]);
    assert_eq!(streaming.credentials.len(), 1);
    assert_eq!(streaming.reconcile.unwrap().status, "pending");

    let four = Partitions::parse(4).unwrap();
    assert_eq!(tenants::set_partitions(&store, id(83), four).await.unwrap(), PartitionChange::Set { before: 2 });
    let two = Partitions::parse(2).unwrap();
    assert_eq!(tenants::set_partitions(&store, id(83), two).await.unwrap(), PartitionChange::Lower { current: 4 });
    assert_eq!(tenants::set_partitions(&store, id(9), two).await.unwrap(), PartitionChange::NotFound);

    assert!(tenants::set_live_tail(&store, id(83), false).await.unwrap());
    assert!(!tenants::find(&store, id(83)).await.unwrap().unwrap().live_tail_enabled);
    assert!(!tenants::set_live_tail(&store, id(9), false).await.unwrap());

    let request = tenants::file_partition_request(&store, id(83), four, "peak", "ops").await.unwrap().unwrap();
    assert_eq!(tenants::partition_requests(&store, id(83)).await.unwrap()[0].id, request.id);
    assert!(tenants::file_partition_request(&store, id(9), four, "", "ops").await.unwrap().is_none());

    assert_eq!(tenants::delete(&store, id(83)).await.unwrap(), Deletion::Active);
    assert_eq!(tenants::deactivate(&store, id(83)).await.unwrap(), Some(true));
    assert_eq!(tenants::deactivate(&store, id(83)).await.unwrap(), Some(false));
    assert_eq!(tenants::deactivate(&store, id(9)).await.unwrap(), None);
    assert_eq!(tenants::set_partitions(&store, id(83), four).await.unwrap(), PartitionChange::Inactive);
    assert_eq!(credentials::list(&store, id(83)).await.unwrap()[0].state, "revoked");

    // Deleting a tenant with allowlist entries moves the version and tells the agents.
    firewall::add(&store, id(83), "203.0.113.7/32", "", 10).await.unwrap();
    let mut versions = store.signals().subscribe_allowlist();
    let before = *versions.borrow_and_update();
    assert_eq!(tenants::delete(&store, id(83)).await.unwrap(), Deletion::Deleted);
    assert!(versions.has_changed().unwrap(), "deletion signals the allowlist");
    assert!(*versions.borrow() > before);
    assert_eq!(tenants::delete(&store, id(83)).await.unwrap(), Deletion::NotFound);
}

/// Polls a future once.
fn futures_ready<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    match std::pin::Pin::new(f).poll(&mut std::task::Context::from_waker(waker)) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

#[tokio::test]
async fn credentials_rotate_revoke_and_newest() {
    let (store, _dir) = store().await;
    tenant(&store, 83).await;
    assert!(matches!(
        credentials::rotate(&store, id(83), |_| unreachable!()).await.unwrap(),
        CredentialChange::Refused
    ));
    assert!(matches!(
        credentials::rotate(&store, id(9), |_| unreachable!()).await.unwrap(),
        CredentialChange::NoTenant
    ));
    tenants::activate(&store, id(83), |k| Ok(sealed(&format!("c83.{k}")))).await.unwrap();
    let CredentialChange::Done(second) =
        credentials::rotate(&store, id(83), |k| Ok(sealed(&format!("c83.{k}")))).await.unwrap()
    else {
        panic!("rotation refused")
    };
    assert_eq!((second.k, second.cn.as_str()), (2, "c83.2"));
    assert_eq!(credentials::newest_active(&store, id(83), 0).await.unwrap().unwrap().row.k, 2);
    assert!(
        matches!(credentials::revoke(&store, id(83), 2).await.unwrap(), CredentialChange::Done(r) if r.state == "revoked")
    );
    assert!(matches!(credentials::revoke(&store, id(83), 7).await.unwrap(), CredentialChange::Refused));
    let newest = credentials::newest_active(&store, id(83), 0).await.unwrap().unwrap();
    assert_eq!((newest.row.k, newest.key_sealed.as_slice()), (1, &[1u8, 2][..]));
    assert!(credentials::newest_active(&store, id(83), i64::MAX).await.unwrap().is_none(), "expired by then");
}

#[tokio::test]
async fn reconcile_bookkeeping() {
    let (store, _dir) = store().await;
    tenant(&store, 83).await;
    tenants::activate(&store, id(83), |k| Ok(sealed(&format!("c83.{k}")))).await.unwrap();
    let rows = reconcile::desired(&store).await.unwrap();
    assert_eq!(rows.topics.len(), 2);
    assert_eq!(rows.principals, vec![("c83.1".to_owned(), 83)]);
    assert_eq!(reconcile::waiting(&store).await.unwrap(), vec![83]);
    assert!(reconcile::record_unreachable(&store, "cluster unreachable: x", None).await.unwrap());
    assert_eq!(
        reconcile::status_of(&store, id(83)).await.unwrap().unwrap().last_error.as_deref(),
        Some("cluster unreachable: x")
    );

    let tenants: BTreeSet<i64> = [83].into();
    // A pass that read an older generation does not mark the newer change ready.
    let stale: BTreeMap<i64, i64> = [(83, rows.generations[&83] - 1)].into();
    reconcile::record(&store, &tenants, &tenants, &stale, &BTreeMap::new(), None).await.unwrap();
    assert_eq!(reconcile::statuses(&store).await.unwrap()[&83], "pending");
    let failure = BTreeMap::from([(83, reconcile::Failure { transient: false, message: "refused".into() })]);
    reconcile::record(&store, &tenants, &BTreeSet::new(), &rows.generations, &failure, None).await.unwrap();
    assert_eq!(reconcile::statuses(&store).await.unwrap()[&83], "error");
    reconcile::record(&store, &tenants, &tenants, &rows.generations, &BTreeMap::new(), None).await.unwrap();
    let status = reconcile::status_of(&store, id(83)).await.unwrap().unwrap();
    assert_eq!((status.status.as_str(), status.last_error), ("ready", None));
}

#[tokio::test]
async fn allowlist_and_brokers() {
    let (store, _dir) = store().await;
    tenant(&store, 83).await;
    let mut versions = store.signals().subscribe_allowlist();
    assert_eq!(firewall::version(&store).await.unwrap(), 0);
    let Change::Done { listing, changed: true, id: Some(entry) } =
        firewall::add(&store, id(83), "203.0.113.7/32", "madrid", 2).await.unwrap()
    else {
        panic!("not added")
    };
    assert_eq!((listing.version, listing.entries.len()), (1, 1));
    assert_eq!(*versions.borrow_and_update(), 1, "the commit is signalled");
    assert!(matches!(
        firewall::add(&store, id(83), "203.0.113.7/32", "", 2).await.unwrap(),
        Change::Done { changed: false, listing, .. } if listing.version == 1
    ));
    firewall::add(&store, id(83), "203.0.113.8/32", "", 2).await.unwrap();
    assert!(matches!(firewall::add(&store, id(83), "203.0.113.9/32", "", 2).await.unwrap(), Change::Refused));
    assert!(matches!(firewall::add(&store, id(9), "203.0.113.9/32", "", 2).await.unwrap(), Change::NoTenant));

    let wanted = vec![("203.0.113.8/32".to_owned(), String::new()), ("2001:db8::1/128".to_owned(), String::new())];
    assert!(matches!(firewall::replace(&store, id(83), &wanted).await.unwrap(), Change::Done { changed: true, .. }));
    assert!(matches!(firewall::replace(&store, id(83), &wanted).await.unwrap(), Change::Done { changed: false, .. }));
    assert_eq!(firewall::snapshot(&store).await.unwrap(), (3, vec!["2001:db8::1/128".into(), "203.0.113.8/32".into()]));
    assert!(matches!(firewall::remove(&store, id(83), Target::Id(entry)).await.unwrap(), Change::Refused), "replaced");
    assert!(matches!(
        firewall::remove(&store, id(83), Target::Cidr("2001:db8::1/128")).await.unwrap(),
        Change::Done { listing, .. } if listing.version == 4
    ));
    assert_eq!(*versions.borrow(), 4);

    let report = |version| AgentReport { broker: "kafka-1", version, entries: 1, error: None, token_name: "agent" };
    assert_eq!(firewall::record_report(&store, &report(9)).await.unwrap(), Err(4), "never published");
    assert_eq!(firewall::record_report(&store, &report(4)).await.unwrap(), Ok(()));
    assert_eq!(firewall::brokers(&store).await.unwrap()[0].applied_version, 4);
    assert_eq!(firewall::listing(&store, id(83)).await.unwrap().unwrap().entries[0].applied_on, 1);
    assert!(firewall::listing(&store, id(9)).await.unwrap().is_none());
    assert!(firewall::forget_broker(&store, "kafka-1").await.unwrap());
    assert!(!firewall::forget_broker(&store, "kafka-1").await.unwrap());
}

#[tokio::test]
async fn users_tokens_and_sessions() {
    let (store, _dir) = store().await;
    tenant(&store, 83).await;
    let new = |email| users::NewUser {
        email,
        role: "tenant",
        tenant_id: Some(83),
        password_hash: None,
        invite_hash: Some(format!("invite-{email}")),
        invite_expires_at: i64::MAX / 2,
    };
    let user = users::create(&store, &new("Ops@Acme.example")).await.unwrap();
    assert!(users::create(&store, &new("ops@acme.example")).await.is_err(), "emails differ only in case");
    assert!(users::create(&store, &users::NewUser { tenant_id: Some(9), ..new("x@y.z") }).await.is_err());
    assert_eq!(users::list(&store).await.unwrap().len(), 1);
    assert_eq!(users::by_invite(&store, "invite-Ops@Acme.example").await.unwrap().unwrap().id, user.id);
    let accepted = users::accept_invite(&store, user.id, "phc").await.unwrap();
    assert_eq!(accepted.password_hash.as_deref(), Some("phc"));
    assert!(users::by_invite(&store, "invite-Ops@Acme.example").await.unwrap().is_none(), "used up");
    assert_eq!(users::enabled_by_email(&store, "OPS@acme.EXAMPLE").await.unwrap().unwrap().id, user.id);

    let token = tokens::NewToken {
        name: "ci",
        role: "tenant",
        tenant_id: Some(83),
        broker_id: None,
        user_id: Some(user.id),
        token_hash: "hash".into(),
        prefix: "of_abcdef",
    };
    let row = tokens::create(&store, &token).await.unwrap();
    assert_eq!(tokens::list(&store).await.unwrap().len(), 1);
    assert_eq!(tokens::list_of_tenant(&store, Some(83)).await.unwrap()[0].id, row.id);
    let principal = tokens::principal(&store, "hash").await.unwrap().unwrap();
    assert_eq!((principal.name.as_str(), principal.role()), ("Ops@Acme.example", Role::Tenant));

    let session = tokens::NewSession {
        id_hash: "sid".into(),
        user_id: Some(user.id),
        token_id: None,
        csrf: "csrf".into(),
        expires_at: i64::MAX / 2,
    };
    tokens::start_session(&store, &session, &principal).await.unwrap();
    assert_eq!(tokens::session(&store, "sid").await.unwrap().unwrap().csrf, "csrf");
    users::set_disabled(&store, user.id, true).await.unwrap().unwrap();
    assert!(tokens::session(&store, "sid").await.unwrap().is_none(), "disabling ends sessions");
    assert!(tokens::principal(&store, "hash").await.unwrap().is_none(), "and stops tokens");
    assert!(users::enabled_by_email(&store, "ops@acme.example").await.unwrap().is_none());
    users::set_disabled(&store, user.id, false).await.unwrap().unwrap();
    assert!(users::set_disabled(&store, 999, true).await.unwrap().is_none());
    assert!(users::find(&store, 999).await.unwrap().is_none());

    tokens::revoke(&store, row.id).await.unwrap().unwrap();
    assert!(tokens::principal(&store, "hash").await.unwrap().is_none());
    assert!(tokens::revoke(&store, 999).await.unwrap().is_none());
    tokens::end_session(&store, Some("sid")).await.unwrap();
}

#[tokio::test]
async fn audit_outbox_log_and_ca() {
    let (store, _dir) = store().await;
    // Inside a request scope a change stages its entry; finishing moves it to the log.
    let scope = audit::Scope::new(
        store.replica().into(),
        "192.0.2.1".into(),
        "POST /api/v1/tenants".into(),
        "/api/v1/tenants".into(),
    );
    scope.authenticate(audit::Actor { name: "ops".into(), role: "operator".into(), tenant: None });
    scope.run(tenant(&store, 83)).await;
    let staged = scope.take_staged();
    assert_eq!(staged.len(), 1);
    let entry = audit::Entry {
        actor: "ops".into(),
        role: "operator".into(),
        tenant_id: Some(83),
        source: scope.source.clone(),
        action: scope.action.clone(),
        target: scope.target.clone(),
        status: 201,
        detail: String::new(),
    };
    audit::finish(&store, &entry, &staged).await.unwrap();
    // A change whose answer never came is recovered with status 0, once its replica is gone:
    // not while this (live) replica may still finish it.
    scope.run(tenant(&store, 84)).await;
    assert_eq!(audit::recover(&store).await.unwrap(), 0, "this replica's own request in flight");
    let gone = audit::Scope::new("a-stopped-replica".into(), "192.0.2.1".into(), "POST /x".into(), "/x".into());
    gone.run(tenant(&store, 85)).await;
    outflow::store::replicas::heartbeat(&store, "a-live-replica", "127.0.0.1:1", "0").await.unwrap();
    let live = audit::Scope::new("a-live-replica".into(), "192.0.2.1".into(), "POST /x".into(), "/x".into());
    live.run(tenant(&store, 86)).await;
    // On SQLite (one process per database) every other process's entry is orphaned.
    let expected = if store.backend() == Backend::Postgres { 1 } else { 2 };
    assert_eq!(audit::recover(&store).await.unwrap(), expected, "the stopped replica's entry");
    let query = audit::Query { limit: 10, ..Default::default() };
    let rows = audit::list(&store, &query).await.unwrap();
    let statuses: Vec<i64> = rows.iter().map(|r| r.status).collect();
    assert_eq!(statuses, if expected == 1 { vec![0, 201] } else { vec![0, 0, 201] });
    let only = audit::Query { action: Some("POST".into()), tenant: Some(83), limit: 10, ..Default::default() };
    assert_eq!(audit::list(&store, &only).await.unwrap().len(), 1);
    let lower = audit::Query { action: Some("post".into()), limit: 10, ..Default::default() };
    assert!(audit::list(&store, &lower).await.unwrap().is_empty(), "the action filter is case-sensitive");
    audit::stage_read(&store, None, "outside a request: nothing").await.unwrap();

    assert!(ca::load(&store).await.unwrap().is_none());
    let row = |name: &str| ca::CaRow {
        name: name.into(),
        algorithm: "ecdsa-p256".into(),
        cert_pem: "PEM".into(),
        key_sealed: vec![1],
        imported: false,
    };
    ca::save(&store, &row("first"), false).await.unwrap();
    ca::save(&store, &row("second"), false).await.unwrap();
    assert_eq!(ca::load(&store).await.unwrap().unwrap().name, "first", "a stored CA is kept");
    ca::save(&store, &ca::CaRow { imported: true, ..row("third") }, true).await.unwrap();
    let loaded = ca::load(&store).await.unwrap().unwrap();
    assert_eq!((loaded.name.as_str(), loaded.imported), ("third", true));

    let counts = metrics::counts(&store).await.unwrap();
    assert_eq!((counts.tenants, counts.streaming_active, counts.credentials_active), (4, 0, 0));
}

#[tokio::test]
async fn leases_fence_the_reconcilers_writes() {
    let (store, _dir) = store().await;
    tenant(&store, 83).await;
    tenants::activate(&store, id(83), |k| Ok(sealed(&format!("c83.{k}")))).await.unwrap();
    let name = outflow::store::RECONCILER_LEASE;
    assert_eq!(lease::acquire(&store, name, "a", 15_000).await.unwrap(), Some(1));
    assert_eq!(lease::acquire(&store, name, "b", 15_000).await.unwrap(), None, "held by a");
    assert_eq!(lease::acquire(&store, name, "a", 15_000).await.unwrap(), Some(1), "renewing keeps the epoch");
    let leases = lease::list(&store).await.unwrap();
    assert_eq!((leases[0].holder.as_str(), leases[0].live), ("a", true));

    // a's lease runs out (a paused process): b takes over with a new epoch.
    assert_eq!(lease::acquire(&store, name, "a", -1).await.unwrap(), Some(1));
    assert_eq!(lease::acquire(&store, name, "b", 15_000).await.unwrap(), Some(2));
    let rows = reconcile::desired(&store).await.unwrap();
    let tenants: BTreeSet<i64> = [83].into();
    let none = BTreeMap::new();
    assert!(!reconcile::record(&store, &tenants, &tenants, &rows.generations, &none, Some(1)).await.unwrap());
    assert!(!reconcile::record_unreachable(&store, "stale", Some(1)).await.unwrap());
    assert_eq!(reconcile::statuses(&store).await.unwrap()[&83], "pending", "the stale holder wrote nothing");
    assert!(reconcile::record(&store, &tenants, &tenants, &rows.generations, &none, Some(2)).await.unwrap());
    assert_eq!(reconcile::statuses(&store).await.unwrap()[&83], "ready");

    lease::release(&store, name, "b").await.unwrap();
    assert_eq!(lease::acquire(&store, name, "a", 15_000).await.unwrap(), Some(3), "released: a takes it");
}

#[tokio::test]
async fn the_audit_log_refuses_changes() {
    let (store, _dir) = store().await;
    let pool = store.pool();
    let scope = audit::Scope::new("stopped".into(), "192.0.2.1".into(), "POST /x".into(), "/x".into());
    scope.run(tenant(&store, 83)).await;
    audit::recover(&store).await.unwrap();
    assert!(sqlx::query("update audit_log set actor = 'x'").execute(pool).await.is_err());
    assert!(sqlx::query("delete from audit_log").execute(pool).await.is_err());
    if store.backend() == Backend::Postgres {
        // TRUNCATE skips row triggers; a statement trigger refuses it.
        assert!(sqlx::query("truncate audit_log").execute(pool).await.is_err());
    }
    let (n,): (i64,) = sqlx::query_as("select count(*) from audit_log").fetch_one(pool).await.unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn sign_in_attempts_count_per_key_in_a_window() {
    let (store, _dir) = store().await;
    let keys = |account: &str, address: &str| {
        vec![
            login::Key { key: format!("account:{account}"), limit: 3 },
            login::Key { key: format!("address:{address}"), limit: 5 },
        ]
    };
    let minute = 60_000;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(login::reserve(&store, &keys("a", "192.0.2.1"), minute).await.unwrap().unwrap());
    }
    // The account is at its limit while all three are in flight.
    let (scope, retry_ms) = login::reserve(&store, &keys("a", "192.0.2.2"), minute).await.unwrap().unwrap_err();
    assert_eq!(scope, 0);
    assert!((1..=minute).contains(&retry_ms), "{retry_ms}");
    login::release(&store, &held.pop().unwrap()).await.unwrap();
    assert!(login::reserve(&store, &keys("a", "192.0.2.2"), minute).await.unwrap().is_ok(), "released: room again");
    // The address counts across accounts: two of a's attempts (one was released) and three more.
    for account in ["b", "c", "e"] {
        login::reserve(&store, &keys(account, "192.0.2.1"), minute).await.unwrap().unwrap();
    }
    let (scope, _) = login::reserve(&store, &keys("d", "192.0.2.1"), minute).await.unwrap().unwrap_err();
    assert_eq!(scope, 1, "five attempts from 192.0.2.1");
    // Clearing an account (a success) does not clear its address.
    login::clear(&store, "account:a").await.unwrap();
    assert!(login::reserve(&store, &keys("a", "192.0.2.9"), minute).await.unwrap().is_ok());
    // Attempts older than the window no longer count.
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    assert!(login::reserve(&store, &keys("d", "192.0.2.1"), 20).await.unwrap().is_ok());
}

/// A reconcile pass that applied everything `tenant` wanted.
async fn confirm(store: &Store, tenant: i64) {
    let generations = reconcile::desired(store).await.unwrap().generations;
    let tenants = BTreeSet::from([tenant]);
    reconcile::record(store, &tenants, &tenants, &generations, &BTreeMap::new(), None).await.unwrap();
}

#[tokio::test]
async fn quotas_of_tenants_and_the_default() {
    use outflow::store::quotas;
    use outflow::tenants::quota::Quota;
    let (store, _dir) = store().await;
    assert!(quotas::of_tenant(&store, id(83)).await.unwrap().is_none(), "no such tenant");
    assert!(quotas::set(&store, id(83), Quota::default()).await.unwrap().is_none());
    tenant(&store, 83).await;
    tenant(&store, 84).await;
    assert_eq!(quotas::of_tenant(&store, id(83)).await.unwrap(), Some(Quota::default()));
    tenants::activate(&store, id(83), |k| Ok(sealed(&format!("c83.{k}")))).await.unwrap();
    confirm(&store, 83).await;
    assert_eq!(reconcile::status_of(&store, id(83)).await.unwrap().unwrap().status, "ready");

    let own = Quota { consumer_byte_rate: Some(200_000), request_percentage: None };
    let mut desired = std::pin::pin!(store.signals().desired_notified());
    assert_eq!(quotas::set(&store, id(83), own).await.unwrap(), Some(Quota::default()));
    assert!(futures_ready(&mut desired).is_some(), "a change wakes the reconciler");
    assert_eq!(reconcile::status_of(&store, id(83)).await.unwrap().unwrap().status, "pending");
    assert_eq!(quotas::of_tenant(&store, id(83)).await.unwrap(), Some(own));
    // The same values again: nothing to apply, nobody woken.
    confirm(&store, 83).await;
    let mut desired = std::pin::pin!(store.signals().desired_notified());
    assert_eq!(quotas::set(&store, id(83), own).await.unwrap(), Some(own));
    assert!(futures_ready(&mut desired).is_none());
    assert_eq!(reconcile::status_of(&store, id(83)).await.unwrap().unwrap().status, "ready");
    // An inactive tenant stores its quota without becoming pending.
    quotas::set(&store, id(84), own).await.unwrap();
    assert!(reconcile::status_of(&store, id(84)).await.unwrap().is_none());

    assert_eq!(quotas::default(&store).await.unwrap(), Quota::default());
    let default = Quota { consumer_byte_rate: Some(1_000_000), request_percentage: Some(12.5) };
    assert_eq!(quotas::set_default(&store, default).await.unwrap(), Quota::default());
    assert_eq!(quotas::default(&store).await.unwrap(), default);
    assert_eq!(reconcile::status_of(&store, id(83)).await.unwrap().unwrap().status, "pending", "active tenants");
    let rows = reconcile::desired(&store).await.unwrap();
    assert_eq!(rows.default_quota, default);
    assert_eq!(rows.quotas.len(), 2);
    assert!(rows.quotas.contains(&(83, own)));
    // All unset removes the tenant's row.
    quotas::set(&store, id(83), Quota::default()).await.unwrap();
    assert_eq!(reconcile::desired(&store).await.unwrap().quotas.len(), 1);
    assert_eq!(quotas::set_default(&store, Quota::default()).await.unwrap(), default);
}

#[tokio::test]
async fn usage_counts_reports_once_across_restarts_and_closes_hours_once() {
    use outflow::store::usage::{self, Counter, CounterValue, GroupOffset, Recorded, Scrape};
    let (store, _dir) = store().await;
    let hour = 1_796_320_800; // 2026-12-03T17:00:00Z
    let bytes_out = |tenant: i64, topic: &str, value: i64| CounterValue {
        tenant,
        topic: topic.into(),
        counter: Counter::BytesOut,
        value,
    };
    let scrape = |ms: i64, started: i64| Scrape { scraped_at_ms: ms, started_at_ms: Some(started) };
    let record = async |s: Scrape, values: &[CounterValue]| {
        usage::record_counters(&store, "kafka-1", s, hour, hour + 10, values).await.unwrap()
    };
    let open = async || usage::hours(&store, None, hour - 3600, hour + 3600).await.unwrap();

    // The first report is where counting starts.
    assert_eq!(record(scrape(1_000, 500), &[bytes_out(83, "c83", 700)]).await, Recorded::Baseline);
    assert!(open().await.is_empty());
    // Growth is counted, per tenant, both topics together.
    let grown = [bytes_out(83, "c83", 1_000), bytes_out(83, "c83_waf", 50), bytes_out(84, "c84", 9)];
    assert_eq!(record(scrape(2_000, 500), &grown).await, Recorded::Counted);
    // A retry (same or older scrape) changes nothing.
    assert_eq!(record(scrape(2_000, 500), &[bytes_out(83, "c83", 5_000)]).await, Recorded::Stale);
    assert_eq!(record(scrape(1_500, 500), &[bytes_out(83, "c83", 5_000)]).await, Recorded::Stale);
    let rows = open().await;
    assert_eq!(
        rows.iter().map(|r| (r.tenant_id, r.bytes_out, r.partial)).collect::<Vec<_>>(),
        [(83, 350, true), (84, 9, true)]
    );
    // The broker restarted (another start time): all of each value is new, even one that grew
    // past its value before the restart.
    assert_eq!(record(scrape(3_000, 2_500), &[bytes_out(83, "c83", 1_200)]).await, Recorded::Counted);
    assert_eq!(open().await[0].bytes_out, 350 + 1_200);
    // Without a start time a counter going down still shows the restart.
    let no_start = Scrape { scraped_at_ms: 4_000, started_at_ms: None };
    assert_eq!(record(no_start, &[bytes_out(83, "c83", 100)]).await, Recorded::Counted);
    assert_eq!(open().await[0].bytes_out, 350 + 1_200 + 100);
    // A restarting broker's first reports may lack its start time: the next one with a new start
    // time still counts all of a value equal to the last.
    let early = Scrape { scraped_at_ms: 4_500, started_at_ms: None };
    assert_eq!(record(early, &[]).await, Recorded::Counted);
    assert_eq!(record(scrape(4_600, 4_400), &[bytes_out(83, "c83", 100)]).await, Recorded::Counted);
    assert_eq!(open().await[0].bytes_out, 350 + 1_200 + 100 + 100);

    // Records delivered: a new group counts from the log start, then its progress; a reset back
    // counts nothing.
    lease::acquire(&store, "usage", "a", 15_000).await.unwrap();
    let offset = |committed: i64| GroupOffset {
        tenant: 83,
        group: "c83_filebeat".into(),
        topic: "c83".into(),
        partition: 0,
        committed,
        log_start: 10,
    };
    assert!(usage::record_group_offsets(&store, "usage", 1, hour, &[offset(110)]).await.unwrap());
    assert!(usage::record_group_offsets(&store, "usage", 1, hour, &[offset(160)]).await.unwrap());
    assert!(usage::record_group_offsets(&store, "usage", 1, hour, &[offset(20)]).await.unwrap());
    assert!(usage::record_group_offsets(&store, "usage", 1, hour, &[offset(30)]).await.unwrap());
    assert!(!usage::record_group_offsets(&store, "usage", 7, hour, &[offset(1_000)]).await.unwrap(), "fenced");
    assert_eq!(open().await[0].records_out, 100 + 50 + 10);
    let mut reads = BTreeMap::new();
    reads.insert(83, 40);
    usage::add_outflow_reads(&store, hour, &reads).await.unwrap();

    // Closing: the hour becomes a row once; a second close and a stale holder move nothing.
    assert_eq!(usage::close_hours(&store, "usage", 1, hour, hour + 3700).await.unwrap(), Some(0), "still open");
    assert_eq!(usage::close_hours(&store, "usage", 7, hour + 3600, hour + 3700).await.unwrap(), None, "fenced");
    assert_eq!(usage::close_hours(&store, "usage", 1, hour + 3600, hour + 3700).await.unwrap(), Some(2));
    assert_eq!(usage::close_hours(&store, "usage", 1, hour + 3600, hour + 3700).await.unwrap(), Some(0));
    let closed = open().await;
    assert_eq!(closed.len(), 2);
    let c83 = &closed[0];
    assert_eq!(
        (c83.tenant_id, c83.bytes_out, c83.records_out, c83.outflow_bytes, c83.partial),
        (83, 1_750, 160, 40, false)
    );
    // A straggler for a closed hour is added to its row when closed again, never lost.
    usage::add_outflow_reads(&store, hour, &reads).await.unwrap();
    assert_eq!(open().await[0].outflow_bytes, 80, "open and closed parts read as one hour");
    assert!(open().await[0].partial);
    usage::close_hours(&store, "usage", 1, hour + 3600, hour + 3700).await.unwrap();
    let again = open().await;
    assert_eq!((again[0].outflow_bytes, again[0].bytes_out, again[0].partial), (80, 1_750, false));
    // One tenant's hours only.
    assert_eq!(usage::hours(&store, Some(84), hour, hour + 3600).await.unwrap().len(), 1);
    assert!(usage::hours(&store, Some(84), hour + 3600, hour + 7200).await.unwrap().is_empty());
}

#[tokio::test]
async fn request_log_windows_open_once_and_count_until_shortly_after_they_end() {
    use outflow::store::request_log::{self, CountRow, LATE_SECS};
    let (store, _dir) = store().await;
    let count = |api: &str, n: i64| CountRow {
        principal: "User:c83.1".into(),
        client_address: "198.51.100.10".into(),
        api: api.into(),
        requests: n,
    };
    assert!(!request_log::add(&store, "kafka-1", 100, &[count("Fetch", 1)]).await.unwrap(), "no window yet");
    let window = request_log::open(&store, "kafka-1", 1, 100, 700, Some("WARN")).await.unwrap().unwrap();
    assert_eq!((window.previous_level.as_deref(), window.ended_at), (Some("WARN"), None));
    let open = request_log::open(&store, "kafka-1", 1, 150, 750, None).await.unwrap().unwrap_err();
    assert_eq!(open.id, window.id, "one open window per broker");
    assert!(request_log::open(&store, "kafka-2", 2, 150, 750, None).await.unwrap().is_ok(), "another broker's");
    assert!(request_log::add(&store, "kafka-1", 200, &[count("Fetch", 3), count("Metadata", 1)]).await.unwrap());
    assert!(request_log::add(&store, "kafka-1", 300, &[count("Fetch", 2)]).await.unwrap());
    assert!(request_log::expired(&store, 699).await.unwrap().is_empty());
    assert_eq!(request_log::expired(&store, 700).await.unwrap()[0].id, window.id);
    assert!(request_log::end(&store, window.id, 700).await.unwrap());
    assert!(!request_log::end(&store, window.id, 701).await.unwrap(), "ended once");
    // Lines the agent reads after the end still count, for a while.
    assert!(request_log::add(&store, "kafka-1", 700 + LATE_SECS, &[count("Fetch", 1)]).await.unwrap());
    assert!(!request_log::add(&store, "kafka-1", 701 + LATE_SECS, &[count("Fetch", 9)]).await.unwrap());
    let counts = request_log::counts(&store, window.id).await.unwrap();
    assert_eq!(
        counts.iter().map(|c| (c.api.as_str(), c.requests)).collect::<Vec<_>>(),
        [("Fetch", 6), ("Metadata", 1)]
    );
    assert_eq!(request_log::latest(&store, "kafka-1").await.unwrap().unwrap().ended_at, Some(700));
}

//! Reconciler against a real broker (started with ops/kafka/broker.sh, stopped at the end).
//!
//! Run: `cargo bench -p outflow --bench reconcile`. Reports activation → ready latency (p50/p99
//! over 50 tenants, goal p50 <= 2 s) and the duration of a no-change pass over 1,000 tenants
//! (goal <= 1 s). Each figure is also a ratio to one read of the cluster's actual state
//! (metadata, ACL list, quota list) measured in the same run on the same broker. Then the same
//! 1,000 tenants with quotas: the pass that applies them, and no-change passes with 1,000 quota
//! entities as a ratio to the no-change pass without.

use std::time::{Duration, Instant};

use outflow::config::KafkaConfig;
use outflow::kafka::reconcile;
use outflow::tenants::TenantId;
use outflow::tenants::quota::Quota;
use outflow::{AppState, Config};
use outflow_testkit::bench::{ms, percentile};
use outflow_testkit::{Broker, Tenants, poll};
use tokio_util::sync::CancellationToken;

async fn wait_ready(state: &AppState, tenant: TenantId) {
    poll(Duration::from_secs(120), Duration::from_millis(5), &format!("tenant {tenant} ready"), async || {
        let row = reconcile::status_of(&state.store, tenant).await.unwrap()?;
        (row.status == "ready").then_some(())
    })
    .await;
}

async fn activate(state: &AppState, id: i64) -> TenantId {
    state.create_and_activate(id, &format!("Bench {id}")).await;
    TenantId::parse(id).unwrap()
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let broker = Broker::up(&work.path().join("kafka"), &data);
    let config = Config {
        data_dir: data,
        kafka: KafkaConfig { reconcile_interval_secs: 3600, ..broker.kafka_config() },
        ..Config::default()
    };
    let state = AppState::open(config).await.unwrap();
    let cluster = state.cluster.clone().unwrap();

    let mut reads = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        cluster.actual().await.unwrap();
        reads.push(t.elapsed());
    }
    reads.sort();
    let unit = percentile(&reads, 0.5);
    println!(
        "baseline: read actual state (metadata + ACLs + quotas), empty cluster: p50 {:.2} ms (= 1 unit)",
        ms(unit)
    );

    let cancel = CancellationToken::new();
    let loop_task = tokio::spawn({
        let (store, cluster, config, metrics, cancel) =
            (state.store.clone(), cluster.clone(), state.config.clone(), state.metrics.clone(), cancel.clone());
        async move { reconcile::run(store, cluster, &config.kafka, metrics, "bench".into(), cancel).await }
    });

    let mut latencies = Vec::new();
    for id in 1..=50 {
        let started = Instant::now();
        let tenant = activate(&state, id).await;
        wait_ready(&state, tenant).await;
        latencies.push(started.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "activation -> ready (topics + ACLs on the broker), 50 tenants one after another: p50 {:.1} ms, p99 {:.1} ms \
         ({:.1} / {:.1} units; goal p50 <= 2 s)",
        ms(p50),
        ms(p99),
        p50.as_secs_f64() / unit.as_secs_f64(),
        p99.as_secs_f64() / unit.as_secs_f64()
    );

    let started = Instant::now();
    let mut last = TenantId::parse(50).unwrap();
    for id in 51..=1000 {
        last = activate(&state, id).await;
    }
    let created = started.elapsed();
    wait_ready(&state, last).await;
    // Ready means confirmed by reading the cluster back; wait until every tenant is.
    let deadline = Instant::now() + Duration::from_secs(120);
    let pending = loop {
        let (pending,): (i64,) = sqlx::query_as("select count(*) from reconcile_status where status != 'ready'")
            .fetch_one(state.store.pool())
            .await
            .unwrap();
        if pending == 0 || Instant::now() > deadline {
            break pending;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "950 more activations recorded in {:.1} s; all 1,000 tenants ready (confirmed) after {:.1} s ({pending} not ready)",
        created.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    cancel.cancel();
    loop_task.await.unwrap();

    let mutations = cluster.mutations();
    let mut passes = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let report = reconcile::pass(&state.store, &cluster, state.config.kafka.delete_topics_on_deactivate, None)
            .await
            .unwrap();
        passes.push(t.elapsed());
        assert_eq!(report.actions, 0, "a provisioned cluster needs no action");
    }
    assert_eq!(cluster.mutations(), mutations, "no-change passes must not mutate");
    passes.sort();
    let p50 = percentile(&passes, 0.5);
    println!(
        "no-change pass over 1,000 tenants (2,000 topics, 5,000 ACLs): p50 {:.1} ms, max {:.1} ms ({:.1} units; goal <= 1 s); \
         0 mutating calls",
        ms(p50),
        ms(*passes.last().unwrap()),
        p50.as_secs_f64() / unit.as_secs_f64()
    );

    // The same 1,000 tenants with quotas: a cluster-wide default, and half with their own rate.
    let default = Quota { consumer_byte_rate: Some(10 << 20), request_percentage: Some(100.0) };
    outflow::store::quotas::set_default(&state.store, default).await.unwrap();
    for id in (2..=1000).step_by(2) {
        let own = Quota { consumer_byte_rate: Some(2 << 20), request_percentage: None };
        outflow::store::quotas::set(&state.store, TenantId::parse(id).unwrap(), own).await.unwrap();
    }
    let before = cluster.mutations();
    let t = Instant::now();
    let report =
        reconcile::pass(&state.store, &cluster, state.config.kafka.delete_topics_on_deactivate, None).await.unwrap();
    let applying = t.elapsed();
    println!(
        "pass applying quotas to 1,000 principals: {:.1} ms, {} actions in {} mutating calls",
        ms(applying),
        report.actions,
        cluster.mutations() - before
    );
    // The brokers answer describes from metadata the controller pushes: wait until a pass
    // finds nothing to do before timing no-change passes.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = reconcile::pass(&state.store, &cluster, state.config.kafka.delete_topics_on_deactivate, None)
            .await
            .unwrap();
        if report.actions == 0 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mutations = cluster.mutations();
    let mut with_quotas = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let report = reconcile::pass(&state.store, &cluster, state.config.kafka.delete_topics_on_deactivate, None)
            .await
            .unwrap();
        with_quotas.push(t.elapsed());
        assert_eq!(report.actions, 0, "a cluster with every quota in place needs no action");
    }
    assert_eq!(cluster.mutations(), mutations, "no-change passes with quotas must not mutate");
    with_quotas.sort();
    let q50 = percentile(&with_quotas, 0.5);
    println!(
        "no-change pass over 1,000 tenants with quotas (1,000 quota entities): p50 {:.1} ms, max {:.1} ms = {:.2}x the \
         pass without quotas; 0 mutating calls",
        ms(q50),
        ms(*with_quotas.last().unwrap()),
        q50.as_secs_f64() / p50.as_secs_f64()
    );
}

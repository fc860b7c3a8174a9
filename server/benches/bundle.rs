//! Bundle building and key generation, timed in one process.
//!
//! Run: `cargo bench -p outflow --bench bundle`. Absolute times depend on the machine, so each
//! figure is also given as a ratio to a fixed unit of work measured in the same run: one
//! PBKDF2-HMAC-SHA256 derivation with 10,000 iterations (what one PKCS#12 bag costs).

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use outflow::pki::KeyAlgorithm;
use outflow::tenants::TenantId;
use outflow::{AppState, Config};
use outflow_testkit::Tenants;
use outflow_testkit::bench::{ms, percentile};

fn time_n(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    let mut samples: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples
}

fn main() {
    let baseline = time_n(30, || {
        let mut out = [0u8; 32];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(10_000).unwrap(),
            b"saltsalt",
            b"password",
            &mut out,
        );
        std::hint::black_box(out);
    });
    let unit = percentile(&baseline, 0.5);
    println!("baseline: PBKDF2-HMAC-SHA256 x10,000 p50 {:.2} ms (= 1 unit)", ms(unit));

    println!("\nkey generation (per key)");
    for (alg, n) in [
        (KeyAlgorithm::EcdsaP256, 200),
        (KeyAlgorithm::EcdsaP384, 100),
        (KeyAlgorithm::Rsa2048, 10),
        (KeyAlgorithm::Rsa3072, 5),
        (KeyAlgorithm::Rsa4096, 3),
    ] {
        let samples = time_n(n, || {
            std::hint::black_box(alg.generate().unwrap());
        });
        let p50 = percentile(&samples, 0.5);
        println!(
            "  {:<11} n={n:<4} p50 {:>9.2} ms  max {:>9.2} ms  ({:.1} units)",
            alg.as_str(),
            ms(p50),
            ms(*samples.last().unwrap()),
            p50.as_secs_f64() / unit.as_secs_f64()
        );
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    println!("\nbundle build: zip + p12s + encrypted key + templates, from the stored credential (no key generation)");
    for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Rsa2048] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_owned(),
            credentials: outflow::config::CredentialConfig { key_algorithm: alg, ..Default::default() },
            ..Config::default()
        };
        let state: AppState = rt.block_on(AppState::open(config)).unwrap();
        let tenant = TenantId::parse(83).unwrap();
        rt.block_on(state.create_and_activate(83, "Bench"));
        let samples = time_n(50, || {
            let zip = rt.block_on(state.bundle(tenant)).unwrap();
            std::hint::black_box(zip);
        });
        let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        println!(
            "  {:<11} n=50 p50 {:>7.2} ms  p99 {:>7.2} ms  ({:.1} units; goal <= 50 ms)",
            alg.as_str(),
            ms(p50),
            ms(p99),
            p50.as_secs_f64() / unit.as_secs_f64()
        );
    }
}

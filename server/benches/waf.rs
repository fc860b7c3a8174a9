//! WAF split benchmark on a generated, realistic ModSecurity v3 corpus (not committed: it is
//! generated on each run, deterministically).
//!
//! Kernel throughput on one core (the file mode's code path, output to a sink) against, in the
//! same run and on the same bytes, a serde_json::Value split and a Python `json` split.
//!
//!     cargo bench -p outflow --bench waf                     # 200,000 records
//!     WAF_BENCH_RECORDS=20000 cargo bench -p outflow --bench waf
//!
//! The end-to-end comparison through a real broker is the `waf_broker` bench.

use std::io::Write;
use std::time::Duration;

use outflow::waf::Limits;
use outflow::waf::file::split_lines;
use outflow_testkit::bench::best_of;
use outflow_testkit::waf_corpus as corpus;
use serde_json::Value;

fn main() {
    let records: usize = std::env::var("WAF_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let corpus = corpus::generate(records, 0x5eed);
    let lines = corpus.iter().filter(|b| **b == b'\n').count();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.ndjson");
    std::fs::write(&path, &corpus).unwrap();
    let mb = corpus.len() as f64 / 1e6;
    println!(
        "corpus: {lines} ModSecurity records, {mb:.1} MB, {:.0} bytes/record on average",
        corpus.len() as f64 / lines as f64
    );

    let (kernel, kernel_out) = best_of(3, || {
        let mut sink = CountingSink(0);
        let report = split_lines(
            Limits::default(),
            &corpus[..],
            std::io::BufWriter::with_capacity(1 << 20, &mut sink),
            std::io::sink(),
        )
        .unwrap();
        assert_eq!(report.invalid, 0);
        report.records_out
    });
    let (serde, serde_out) = best_of(2, || serde_split(&corpus));
    assert_eq!(kernel_out, serde_out, "both splits yield the same number of records");
    let (python, python_out) = python_split(&path);
    assert_eq!(kernel_out, python_out, "the Python split yields the same number of records");

    let rate = |d: Duration| mb / d.as_secs_f64();
    println!("output records: {kernel_out}");
    println!("kernel (one core):        {:8.1} MB/s", rate(kernel));
    println!("serde_json::Value split:  {:8.1} MB/s", rate(serde));
    println!("Python json split:        {:8.1} MB/s", rate(python));
    println!("ratio kernel / serde_json::Value: {:.2}x (goal >= 3.5x)", serde.as_secs_f64() / kernel.as_secs_f64());
    println!("ratio kernel / Python json:       {:.2}x (goal >= 12x)", python.as_secs_f64() / kernel.as_secs_f64());
}

struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The plain way: parse into a Value, replace the array by each message, serialize.
fn serde_split(corpus: &[u8]) -> u64 {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, CountingSink(0));
    let mut n = 0;
    for line in corpus.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut value: Value = serde_json::from_slice(line).unwrap();
        let path = if value.get("transaction").and_then(|t| t.get("messages")).is_some() {
            "/transaction/messages"
        } else {
            "/messages"
        };
        let messages = match value.pointer(path) {
            Some(Value::Array(items)) if !items.is_empty() => items.clone(),
            _ => {
                serde_json::to_writer(&mut out, &value).unwrap();
                out.write_all(b"\n").unwrap();
                n += 1;
                continue;
            }
        };
        for message in messages {
            *value.pointer_mut(path).unwrap() = message;
            serde_json::to_writer(&mut out, &value).unwrap();
            out.write_all(b"\n").unwrap();
            n += 1;
        }
    }
    out.flush().unwrap();
    n
}

const PYTHON_SPLIT: &str = r#"
import json, os, sys, time
data = open(sys.argv[1], 'rb').read()
started = time.perf_counter()
n = 0
with open(os.devnull, 'w', buffering=1 << 20) as out:
    for line in data.splitlines():
        if not line:
            continue
        record = json.loads(line)
        tx = record.get('transaction')
        holder = tx if isinstance(tx, dict) and 'messages' in tx else record
        messages = holder.get('messages')
        if isinstance(messages, list) and messages:
            for message in messages:
                holder['messages'] = message
                out.write(json.dumps(record, ensure_ascii=False))
                out.write('\n')
                n += 1
        else:
            out.write(json.dumps(record, ensure_ascii=False))
            out.write('\n')
            n += 1
print(time.perf_counter() - started, n)
"#;

/// Times a Python `json` split of the same file, measured inside Python (no interpreter start-up).
fn python_split(path: &std::path::Path) -> (Duration, u64) {
    let out = std::process::Command::new("python3").arg("-c").arg(PYTHON_SPLIT).arg(path).output().expect("python3");
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace();
    let secs: f64 = parts.next().unwrap().parse().unwrap();
    let n: u64 = parts.next().unwrap().parse().unwrap();
    (Duration::from_secs_f64(secs), n)
}

//! WAF split benchmark on a generated, realistic ModSecurity v3 corpus (not committed: it is
//! generated on each run, deterministically).
//!
//! Kernel throughput on one core (the file mode's code path, output to a sink) against, in the
//! same run and on the same bytes, a serde_json::Value split and a Python `json` split.
//!
//!     cargo bench -p outflow --bench waf                     # 200,000 records
//!     WAF_BENCH_RECORDS=20000 cargo bench -p outflow --bench waf
//!
//! The end-to-end comparison through a real broker is `ops/bench/waf-e2e.sh`.

use std::io::Write;
use std::time::{Duration, Instant};

use outflow::waf::Limits;
use outflow::waf::file::split_lines;
use serde_json::Value;

fn main() {
    let records: usize = std::env::var("WAF_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let corpus = generate(records, 0x5eed);
    let lines = corpus.iter().filter(|b| **b == b'\n').count();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.ndjson");
    std::fs::write(&path, &corpus).unwrap();
    let mb = corpus.len() as f64 / 1e6;
    println!("corpus: {lines} ModSecurity records, {mb:.1} MB, {:.0} bytes/record on average", corpus.len() as f64 / lines as f64);

    let (kernel, kernel_out) = best_of(3, || {
        let mut sink = CountingSink(0);
        let report = split_lines(Limits::default(), &corpus[..], std::io::BufWriter::with_capacity(1 << 20, &mut sink), std::io::sink()).unwrap();
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

/// Runs `f` `n` times and keeps the fastest time (the least disturbed by other processes).
fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = None;
    let mut result = None;
    for _ in 0..n {
        let started = Instant::now();
        let r = std::hint::black_box(f());
        let took = started.elapsed();
        if best.is_none_or(|b| took < b) {
            best = Some(took);
        }
        result = Some(r);
    }
    (best.unwrap(), result.unwrap())
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

/// Deterministic random numbers (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn token(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len())] as char).collect()
    }
}

const RULES: &[(&str, &str, &str)] = &[
    ("942100", "SQL Injection Attack Detected via libinjection", "REQUEST-942-APPLICATION-ATTACK-SQLI"),
    ("941100", "XSS Attack Detected via libinjection", "REQUEST-941-APPLICATION-ATTACK-XSS"),
    ("930120", "OS File Access Attempt", "REQUEST-930-APPLICATION-ATTACK-LFI"),
    ("932160", "Remote Command Execution: Unix Shell Code Found", "REQUEST-932-APPLICATION-ATTACK-RCE"),
    ("920350", "Host header is a numeric IP address", "REQUEST-920-PROTOCOL-ENFORCEMENT"),
    ("949110", "Inbound Anomaly Score Exceeded (Total Score: 10)", "REQUEST-949-BLOCKING-EVALUATION"),
];

const PAYLOADS: &[&str] = &[
    r#"' or 1=1 --"#,
    r#"<script>alert(\"x\")<\/script>"#,
    "../../etc/passwd",
    "; cat /etc/shadow",
    "caf\\u00e9 ünïcödé 日本語 😀",
    r#"\"}; DROP TABLE users; --"#,
];

/// `records` newline-delimited ModSecurity v3 audit records of 1.5–6 KB with 1–6 messages,
/// request and response headers, and unicode.
fn generate(records: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(records * 3800);
    for i in 0..records {
        let target = 1500 + rng.below(4500);
        let record = record(&mut rng, i, target);
        out.extend_from_slice(record.as_bytes());
        out.push(b'\n');
    }
    out
}

fn record(rng: &mut Rng, i: usize, target: usize) -> String {
    let payload = rng.pick(PAYLOADS);
    let n = 1 + rng.below(6);
    let messages: Vec<String> = (0..n)
        .map(|_| {
            let (id, msg, file) = RULES[rng.below(RULES.len())];
            format!(
                concat!(
                    r#"{{"message":"{msg}","details":{{"match":"Matched \"Operator `Rx' with parameter `(?i)select.*from' against variable `ARGS:q' (Value: `{payload}' )","#,
                    r#""reference":"o0,{o}v21,{v}","ruleId":"{id}","file":"/etc/nginx/owasp-crs/rules/{file}.conf","lineNumber":"{line}","#,
                    r#""data":"Matched Data: {payload} found within ARGS:q: {payload}","severity":"{sev}","ver":"OWASP_CRS/4.7.0","rev":"","#,
                    r#""tags":["application-multi","language-multi","platform-multi","attack-generic","paranoia-level/1","OWASP_CRS","capec/1000/152/248/66","PCI/6.5.2"],"maturity":"0","accuracy":"0"}}}}"#
                ),
                msg = msg,
                payload = payload,
                o = rng.below(40),
                v = rng.below(60),
                id = id,
                file = file,
                line = 20 + rng.below(900),
                sev = rng.below(5),
            )
        })
        .collect();
    let mut headers = format!(
        concat!(
            r#""Host":"www.example-{h}.com","User-Agent":"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0 ünï","#,
            r#""Accept":"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8","Accept-Language":"es-ES,es;q=0.8,en-US;q=0.5","#,
            r#""Accept-Encoding":"gzip, deflate, br","Referer":"https://www.example.com/b\u00fasqueda?q=caf\u00e9","X-Forwarded-For":"198.51.100.{a}""#
        ),
        h = rng.below(1000),
        a = rng.below(255)
    );
    let body: String = messages.join(",");
    let base = 900 + body.len() + headers.len();
    if target > base {
        // A cookie header brings the record to its target size.
        headers.push_str(&format!(r#","Cookie":"session={}""#, rng.token(target - base)));
    }
    format!(
        concat!(
            r#"{{"transaction":{{"client_ip":"203.0.113.{ip}","time_stamp":"Wed Nov 25 12:{mm:02}:{ss:02} 2026","server_id":"{server}","#,
            r#""client_port":{port},"host_ip":"10.0.0.{hip}","host_port":443,"unique_id":"1764{i:09}.{u}","#,
            r#""request":{{"method":"GET","http_version":1.1,"uri":"/search?q={payload}&lang=日本語","headers":{{{headers}}}}},"#,
            r#""response":{{"http_code":403,"headers":{{"Server":"nginx","Date":"Wed, 25 Nov 2026 12:00:00 GMT","Content-Length":"146","Content-Type":"text/html","Connection":"keep-alive"}}}},"#,
            r#""producer":{{"modsecurity":"ModSecurity v3.0.13 (Linux)","connector":"ModSecurity-nginx v1.0.3","secrules_engine":"Enabled","components":["OWASP_CRS/4.7.0\""]}},"#,
            r#""messages":[{body}]}}}}"#
        ),
        ip = rng.below(255),
        mm = rng.below(60),
        ss = rng.below(60),
        server = rng.token(40),
        port = 1024 + rng.below(60000),
        hip = rng.below(255),
        i = i,
        u = rng.below(1_000_000),
        payload = payload,
        headers = headers,
        body = body,
    )
}

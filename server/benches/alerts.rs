//! Alert evaluation against the WAF splitter, on one core and the same generated ModSecurity
//! corpus: split records per second out of the splitter's kernel, and WAF events per second
//! through the evaluator's path (decode severity, rule id and client of each split record, keep
//! it in the window, count a `waf_burst` rule grouped by client). The goal is a ratio ≥ 2, so
//! alerting never lags the stream.
//!
//!     cargo bench -p outflow --bench alerts                      # 100,000 raw records
//!     ALERTS_BENCH_RECORDS=20000 cargo bench -p outflow --bench alerts

use std::collections::VecDeque;

use outflow::alerts::rules::{GroupBy, WafBurst};
use outflow::alerts::waf::{Event, count, decode, from_headers};
use outflow::waf::events::{message_facts, string_literal};
use outflow::waf::{Limits, Splitter};
use outflow_testkit::bench::best_of;
use outflow_testkit::waf_corpus as corpus;

/// A split record and its headers, as the worker produces it.
type SplitRecord = (Vec<u8>, Vec<(&'static str, Vec<u8>)>);

fn main() {
    let records: usize = std::env::var("ALERTS_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let raw = corpus::generate(records, 0xa1e7);
    let lines: Vec<&[u8]> = raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();

    // The splitter as its worker runs it: split, and read each message's facts for its headers.
    let (split_time, split) = best_of(3, || {
        let mut splitter = Splitter::new(Limits::default());
        let mut out: Vec<SplitRecord> = Vec::with_capacity(lines.len() * 4);
        for line in &lines {
            splitter
                .split(line, |part, record| {
                    let (rule, severity) = part.message.map(|(s, e)| message_facts(&record[s..e])).unwrap_or_default();
                    let client = part.client.and_then(|(s, e)| string_literal(&line[s..e]));
                    let mut headers = vec![("message-count", part.count.to_string().into_bytes())];
                    for (k, v) in [("waf-rule-id", rule), ("waf-severity", severity), ("waf-client", client)] {
                        if let Some(v) = v {
                            headers.push((k, v.into_bytes()));
                        }
                    }
                    out.push((record.to_vec(), headers));
                })
                .unwrap();
        }
        out
    });
    let n = split.len();
    let rule = WafBurst { group_by: GroupBy::ClientIp, min_severity: "WARNING".into(), ..WafBurst::default() };
    let now = outflow::clock::now_ms();
    // Spread over the last 5 minutes, as a stream would be.
    let at = |i: usize| now - 300_000 + (i as i64 * 300_000 / n as i64);
    let evaluate = |from_body: bool| {
        let mut window: VecDeque<Event> = VecDeque::with_capacity(n);
        for (i, (record, headers)) in split.iter().enumerate() {
            let event = if from_body {
                decode(at(i), record)
            } else {
                from_headers(at(i), headers.iter().map(|(k, v)| (*k, v.as_slice())))
            };
            window.push_back(event.expect("every split record reads"));
        }
        // One evaluation over the whole window (the evaluator counts every few seconds).
        count(&window, &rule, now)
    };
    let (eval_time, counts) = best_of(3, || evaluate(false));
    let (body_time, body_counts) = best_of(1, || evaluate(true));
    assert_eq!(counts, body_counts, "headers and bodies count the same");
    let split_rate = n as f64 / split_time.as_secs_f64();
    let eval_rate = n as f64 / eval_time.as_secs_f64();
    let body_rate = n as f64 / body_time.as_secs_f64();
    println!(
        "corpus: {records} raw records, {:.1} MB → {n} split records ({} client groups)",
        raw.len() as f64 / 1e6,
        counts.len()
    );
    println!("splitter with header facts (one core): {split_rate:>11.0} split records/s");
    println!("evaluator from headers (one core):     {eval_rate:>11.0} WAF events/s");
    println!("evaluator decoding bodies (fallback):  {body_rate:>11.0} WAF events/s");
    println!("ratio evaluator / splitter:            {:.2}x (goal >= 2x)", eval_rate / split_rate);
    println!("ratio body fallback / splitter:        {:.2}x", body_rate / split_rate);
}

//! Unit tests for each error reason and edge case, and property tests against a plain
//! serde_json::Value implementation of the same split.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

fn split_all(input: &[u8]) -> Result<Vec<Vec<u8>>, SplitError> {
    split_with(Limits::default(), input)
}

fn split_with(limits: Limits, input: &[u8]) -> Result<Vec<Vec<u8>>, SplitError> {
    split_counted(limits, input).map(|(records, _)| records)
}

/// The records and the message count every one of them carried.
fn split_counted(limits: Limits, input: &[u8]) -> Result<(Vec<Vec<u8>>, usize), SplitError> {
    let mut out = Vec::new();
    let mut counts = Vec::new();
    let n = Splitter::new(limits).split(input, |part, r| {
        assert_eq!(part.index, out.len(), "indexes count up from 0");
        counts.push(part.count);
        out.push(r.to_vec());
    });
    match n {
        Ok(n) => {
            assert_eq!(n, out.len());
            assert!(counts.iter().all(|&c| c == counts[0]), "one count per raw record: {counts:?}");
            let count = counts[0];
            assert!(count == out.len() || (out.len() == 1 && count <= 1), "{count} messages, {} records", out.len());
            Ok((out, count))
        }
        Err(e) => {
            assert!(out.is_empty(), "an error must come with no output, got {} records", out.len());
            Err(e)
        }
    }
}

fn texts(records: Vec<Vec<u8>>) -> Vec<String> {
    records.into_iter().map(|r| String::from_utf8(r).unwrap()).collect()
}

fn count(input: &[u8]) -> usize {
    split_counted(Limits::default(), input).unwrap().1
}

fn reason(input: &[u8]) -> &'static str {
    split_all(input).expect_err("must be refused").reason()
}

#[test]
fn modsecurity_record_splits_into_one_record_per_message_keeping_every_other_byte() {
    let input = br#"{"transaction": {"client_ip":"1.2.3.4" ,"messages" : [ {"message":"a","details":{"ruleId":"1"}} ,{"message":"b"}], "n": 1.50}}"#;
    assert_eq!(
        texts(split_all(input).unwrap()),
        [
            r#"{"transaction": {"client_ip":"1.2.3.4" ,"messages" : {"message":"a","details":{"ruleId":"1"}}, "n": 1.50}}"#,
            r#"{"transaction": {"client_ip":"1.2.3.4" ,"messages" : {"message":"b"}, "n": 1.50}}"#,
        ]
    );
}

#[test]
fn coraza_record_splits_on_the_top_level_messages() {
    let input = br#"{"transaction":{"id":"x"},"messages":[{"data":{"id":942100}},{"data":{"id":1}}]}"#;
    assert_eq!(
        texts(split_all(input).unwrap()),
        [
            r#"{"transaction":{"id":"x"},"messages":{"data":{"id":942100}}}"#,
            r#"{"transaction":{"id":"x"},"messages":{"data":{"id":1}}}"#,
        ]
    );
    let plan = Splitter::new(Limits::default()).plan(input).unwrap();
    assert_eq!(plan.array.map(|(shape, ..)| shape), Some(Shape::Coraza));
}

#[test]
fn modsecurity_2_9_record_splits_on_audit_data_messages_one_string_each() {
    let input = br#"{"transaction":{"time":"14/Sep/2020:12:44:19 +0000","remote_address":"203.0.113.7"},"request":{"request_line":"GET /?q=1 HTTP/1.1"},"audit_data":{"messages":["Warning. Pattern match [id \"942100\"] [msg \"SQL Injection\"] [severity \"CRITICAL\"]","Access denied with code 403 (phase 2). [id \"949110\"]"],"engine_mode":"ENABLED"}}"#;
    assert_eq!(
        texts(split_all(input).unwrap()),
        [
            r#"{"transaction":{"time":"14/Sep/2020:12:44:19 +0000","remote_address":"203.0.113.7"},"request":{"request_line":"GET /?q=1 HTTP/1.1"},"audit_data":{"messages":"Warning. Pattern match [id \"942100\"] [msg \"SQL Injection\"] [severity \"CRITICAL\"]","engine_mode":"ENABLED"}}"#,
            r#"{"transaction":{"time":"14/Sep/2020:12:44:19 +0000","remote_address":"203.0.113.7"},"request":{"request_line":"GET /?q=1 HTTP/1.1"},"audit_data":{"messages":"Access denied with code 403 (phase 2). [id \"949110\"]","engine_mode":"ENABLED"}}"#,
        ]
    );
    assert_eq!(count(input), 2);
    let plan = Splitter::new(Limits::default()).plan(input).unwrap();
    assert_eq!(plan.array.map(|(shape, ..)| shape), Some(Shape::ModSecurity2));
    assert_eq!(plan.count, 2);
}

#[test]
fn the_shapes_are_chosen_in_order_v3_then_2_9_then_coraza() {
    let input = br#"{"messages":[1],"audit_data":{"messages":["a","b"]},"transaction":{"messages":[{"m":1}]}}"#;
    assert_eq!(
        texts(split_all(input).unwrap()),
        [r#"{"messages":[1],"audit_data":{"messages":["a","b"]},"transaction":{"messages":{"m":1}}}"#]
    );
    let input = br#"{"messages":[1],"audit_data":{"messages":["a","b"]},"transaction":{"id":"x"}}"#;
    assert_eq!(
        texts(split_all(input).unwrap()),
        [
            r#"{"messages":[1],"audit_data":{"messages":"a"},"transaction":{"id":"x"}}"#,
            r#"{"messages":[1],"audit_data":{"messages":"b"},"transaction":{"id":"x"}}"#,
        ]
    );
    // `messages` elsewhere under audit_data, or audit_data not an object, is not a 2.9 array.
    for input in [
        &br#"{"audit_data":{"action":{"messages":["a"]}},"messages":[1,2]}"#[..],
        br#"{"audit_data":["messages"],"messages":[1,2]}"#,
    ] {
        assert_eq!(split_all(input).unwrap().len(), 2, "{}", String::from_utf8_lossy(input));
    }
    // A later duplicate audit_data without messages drops the earlier one's array.
    let input = br#"{"audit_data":{"messages":["a","b"]},"audit_data":{"engine_mode":"ENABLED"}}"#;
    assert_eq!(split_all(input).unwrap(), [input.to_vec()]);
    assert_eq!(count(input), 0);
}

#[test]
fn every_record_carries_the_message_count_of_its_raw_record() {
    assert_eq!(count(br#"{"transaction":{"messages":[{"a":1},{"b":2},{"c":3}]}}"#), 3);
    assert_eq!(count(br#"{"messages":[{"a":1}]}"#), 1);
    for none in [
        &br#"{"transaction":{"messages":[]}}"#[..],
        br#"{"audit_data":{"messages":[]}}"#,
        br#"{"messages":null}"#,
        br#"{"transaction":{"id":1}}"#,
        br#"{}"#,
    ] {
        assert_eq!(count(none), 0, "{}", String::from_utf8_lossy(none));
    }
    // A record that already holds one message (split before) says so.
    assert_eq!(count(br#"{"transaction":{"messages":{"message":"one"}}}"#), 1);
    assert_eq!(count(br#"{"audit_data":{"messages":"Warning. [id \"1\"]"}}"#), 1);
}

#[test]
fn transaction_messages_win_over_top_level_messages() {
    let input = br#"{"messages":[1,2,3],"transaction":{"messages":[{"m":1}]}}"#;
    assert_eq!(texts(split_all(input).unwrap()), [r#"{"messages":[1,2,3],"transaction":{"messages":{"m":1}}}"#]);
}

#[test]
fn records_without_an_array_to_split_pass_through_once_unchanged() {
    for input in [
        &br#"{"transaction":{"messages":{"message":"already one"}}}"#[..],
        br#"{"transaction":{"messages":[]}}"#,
        br#"{"messages":[ ]}"#,
        br#"{"transaction":{"id":1}}"#,
        br#" {} "#,
        br#"{"messages":null}"#,
    ] {
        assert_eq!(split_all(input).unwrap(), [input.to_vec()], "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn the_last_duplicate_key_counts_as_serde_json_reads_it() {
    let input = br#"{"messages":[1,2],"messages":{"one":1}}"#;
    assert_eq!(split_all(input).unwrap(), [input.to_vec()]);
    let input = br#"{"messages":{"one":1},"messages":[1,2]}"#;
    assert_eq!(
        texts(split_all(input).unwrap()),
        [r#"{"messages":{"one":1},"messages":1}"#, r#"{"messages":{"one":1},"messages":2}"#]
    );
    // A later `transaction` without messages drops the earlier one's array.
    let input = br#"{"transaction":{"messages":[1,2]},"transaction":{"id":1}}"#;
    assert_eq!(split_all(input).unwrap(), [input.to_vec()]);
}

#[test]
fn keys_are_compared_after_unescaping() {
    let input = br#"{"messag\u0065s":[true,false]}"#;
    assert_eq!(texts(split_all(input).unwrap()), [r#"{"messag\u0065s":true}"#, r#"{"messag\u0065s":false}"#]);
}

#[test]
fn nested_messages_keys_elsewhere_are_not_split() {
    let input = br#"{"request":{"messages":[1,2]},"transaction":{"x":{"messages":[1]}}}"#;
    assert_eq!(split_all(input).unwrap(), [input.to_vec()]);
}

#[test]
fn empty_input_is_refused() {
    assert_eq!(reason(b""), "empty");
    assert_eq!(reason(b"  \n"), "invalid-json");
}

#[test]
fn oversized_records_are_refused() {
    let limits = Limits { max_record_bytes: 16, ..Limits::default() };
    let err = split_with(limits, br#"{"messages":[1,2,3,4]}"#).unwrap_err();
    assert_eq!(err, SplitError::TooLarge { bytes: 22, limit: 16 });
    assert_eq!(err.reason(), "too-large");
    assert!(split_with(limits, br#"{"messages":[1]}"#).is_ok());
}

#[test]
fn too_many_messages_are_refused() {
    let limits = Limits { max_messages: 3, ..Limits::default() };
    let err = split_with(limits, br#"{"messages":[1,2,3,4]}"#).unwrap_err();
    assert_eq!(err, SplitError::TooManyMessages { count: 4, limit: 3 });
    assert_eq!(split_with(limits, br#"{"messages":[1,2,3]}"#).unwrap().len(), 3);
}

#[test]
fn invalid_utf8_is_refused_inside_and_outside_strings() {
    assert_eq!(split_all(b"{\"a\":\"\xff\"}").unwrap_err(), SplitError::InvalidUtf8 { at: 6 });
    assert_eq!(reason(b"{\"a\":\"\xed\xa0\x80\"}"), "invalid-utf8", "encoded surrogate");
    assert_eq!(reason(b"{\"a\":\"\xc3\"}"), "invalid-utf8", "truncated sequence");
}

#[test]
fn invalid_json_is_refused_with_its_position() {
    let cases: &[(&[u8], usize)] = &[
        (br#"{"a":1,}"#, 7),
        (br#"{"a" 1}"#, 5),
        (br#"{"a":[1,]}"#, 8),
        (br#"{"a":01}"#, 6),
        (br#"{"a":1.}"#, 7),
        (br#"{"a":1e}"#, 7),
        (br#"{"a":-}"#, 6),
        (br#"{"a":tru}"#, 5),
        (br#"{"a":"x\q"}"#, 8),
        (br#"{"a":"\u12g4"}"#, 8),
        (br#"{"a":"\ud800"}"#, 12),
        (br#"{"a":"\udc00"}"#, 6),
        (b"{\"a\":\"tab\there\"}", 9),
        (br#"{"a":"open}"#, 11),
        (br#"{"a":1} x"#, 8),
        (br#"{"a":1}{}"#, 7),
        (br#"{"a":[1}"#, 7),
        (br#"{"a":{"b":1]}"#, 11),
        (br#"{a:1}"#, 1),
        (br#"{"messages":[1,2"#, 16),
        (b"{\"a\":1\x0b}", 6),
    ];
    for &(input, at) in cases {
        match split_all(input) {
            Err(SplitError::InvalidJson { at: got, .. }) => {
                assert_eq!(got, at, "{}", String::from_utf8_lossy(input))
            }
            other => panic!("{}: {other:?}", String::from_utf8_lossy(input)),
        }
    }
}

#[test]
fn valid_escapes_and_surrogate_pairs_are_accepted() {
    let input = r#"{"a":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 caf\u00C9 é 😀","messages":["\ud83d\ude00"]}"#;
    assert_eq!(
        texts(split_all(input.as_bytes()).unwrap()),
        [r#"{"a":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00 caf\u00C9 é 😀","messages":"\ud83d\ude00"}"#]
    );
}

#[test]
fn documents_that_are_not_objects_are_refused() {
    for input in [&b"[1,2]"[..], b"1", b"\"x\"", b"null"] {
        assert_eq!(reason(input), "not-an-object", "{}", String::from_utf8_lossy(input));
    }
    for input in [&b"not json"[..], b"[1,", b"nul", b" x"] {
        assert_eq!(reason(input), "invalid-json", "{}", String::from_utf8_lossy(input));
    }
}

#[test]
fn deep_nesting_neither_recurses_nor_crashes() {
    let depth = 200_000;
    let mut valid = b"{\"a\":".to_vec();
    valid.extend(std::iter::repeat_n(b'[', depth));
    valid.extend(std::iter::repeat_n(b']', depth));
    valid.extend_from_slice(b",\"messages\":[{\"x\":1},2]}");
    assert_eq!(split_all(&valid).unwrap().len(), 2);
    let unclosed: Vec<u8> = b"{\"a\":".iter().copied().chain(std::iter::repeat_n(b'[', depth)).collect();
    assert_eq!(reason(&unclosed), "invalid-json");
    let objects: Vec<u8> = std::iter::repeat_n(&b"{\"a\":"[..], depth).flatten().copied().collect();
    assert_eq!(reason(&objects), "invalid-json");
}

#[test]
fn the_splitter_is_reusable_across_records() {
    let mut splitter = Splitter::new(Limits::default());
    let mut seen = Vec::new();
    splitter.split(br#"{"messages":[1,2,3]}"#, |_, r| seen.push(r.to_vec())).unwrap();
    splitter.split(br#"{"messages":[1,2}"#, |_, r| seen.push(r.to_vec())).unwrap_err();
    splitter.split(br#"{"transaction":{"messages":[4]}}"#, |_, r| seen.push(r.to_vec())).unwrap();
    assert_eq!(
        texts(seen),
        [r#"{"messages":1}"#, r#"{"messages":2}"#, r#"{"messages":3}"#, r#"{"transaction":{"messages":4}}"#]
    );
}

/// The straightforward implementation the kernel must agree with: parse into a
/// serde_json::Value, replace the array by each element. `None` when it refuses the record;
/// otherwise the records and the raw record's message count.
fn reference(input: &[u8]) -> Option<(Vec<Value>, usize)> {
    let value: Value = serde_json::from_slice(input).ok()?;
    value.as_object()?;
    let candidates =
        [("/transaction/messages", "transaction"), ("/audit_data/messages", "audit_data"), ("/messages", "")];
    let found = candidates.iter().find_map(|&(path, holder)| {
        let holder = if holder.is_empty() { Some(&value) } else { value.get(holder) };
        Some((path, holder?.get("messages")?))
    });
    let Some((path, array)) = found else {
        return Some((vec![value], 0));
    };
    let count = match array {
        Value::Array(items) => items.len(),
        Value::Null => 0,
        _ => 1,
    };
    let records = match array.as_array() {
        Some(items) if !items.is_empty() => Some(
            items
                .iter()
                .map(|item| {
                    let mut out = value.clone();
                    *out.pointer_mut(path).unwrap() = item.clone();
                    out
                })
                .collect(),
        ),
        _ => Some(vec![value]),
    };
    records.map(|r| (r, count))
}

/// A small deterministic generator (splitmix64), seeded by proptest.
struct Gen(u64);

impl Gen {
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
    fn ws(&mut self) -> &'static str {
        self.pick(&["", "", "", " ", "\n", "\t", "  \r\n  ", " \t"])
    }
    fn string(&mut self) -> String {
        let parts = [
            "abc",
            "SQL Injection Attack",
            "é",
            "日本語",
            "😀",
            "\\\"",
            "\\\\",
            "\\/",
            "\\n",
            "\\t",
            "\\u00e9",
            "\\u0041",
            "\\ud83d\\ude00",
            "\\u2028",
            "<script>",
            "' OR 1=1 --",
            " ",
            "%20",
            "\u{7f}",
            "ß",
        ];
        let n = self.below(5);
        let body: String = (0..n).map(|_| self.pick(&parts)).collect();
        format!("\"{body}\"")
    }
    fn number(&mut self) -> String {
        self.pick(&[
            "0",
            "-0",
            "1",
            "942100",
            "-17",
            "3.25",
            "1E400",
            "-1e-400",
            "2.5e+10",
            "123456789012345678901234567890",
            "0.000000000000000000000000000001",
            "1.50",
            "9007199254740993",
            "1e5",
        ])
        .to_owned()
    }
    fn scalar(&mut self) -> String {
        match self.below(6) {
            0 | 1 => self.string(),
            2 | 3 => self.number(),
            4 => self.pick(&["true", "false"]).to_owned(),
            _ => "null".to_owned(),
        }
    }
    fn value(&mut self, depth: usize) -> String {
        match (self.below(5), depth) {
            (0, d) if d < 3 => self.object(depth + 1, &[]),
            (1, d) if d < 3 => self.array(depth + 1),
            _ => self.scalar(),
        }
    }
    fn array(&mut self, depth: usize) -> String {
        let n = self.below(4);
        let items: Vec<String> = (0..n).map(|_| format!("{}{}{}", self.ws(), self.value(depth), self.ws())).collect();
        format!("[{}{}]", items.join(","), self.ws())
    }
    /// An object with random keys plus `fixed` (key, raw value) pairs at random positions.
    fn object(&mut self, depth: usize, fixed: &[(&str, String)]) -> String {
        let keys = ["id", "client_ip", "uri", "msg", "ruleId", "data", "x", "é", "na\\u006de"];
        let mut fields: Vec<(String, String)> =
            (0..self.below(4)).map(|_| (format!("\"{}\"", self.pick(&keys)), self.value(depth))).collect();
        for (k, v) in fixed {
            let at = self.below(fields.len() + 1);
            fields.insert(at, (format!("\"{k}\""), v.clone()));
        }
        let body: Vec<String> = fields
            .into_iter()
            .map(|(k, v)| format!("{}{k}{}:{}{v}{}", self.ws(), self.ws(), self.ws(), self.ws()))
            .collect();
        format!("{{{}{}}}", body.join(","), self.ws())
    }
    /// A ModSecurity 2.9 message: one string with the rule's tags.
    fn message_2_9(&mut self) -> String {
        let body = self.string();
        let body = &body[1..body.len() - 1];
        format!(
            "\"Warning. Pattern match {body} [file \\\"/etc/crs/rules.conf\\\"] [id \\\"{}\\\"] [msg \\\"{body}\\\"] [severity \\\"{}\\\"]\"",
            900_000 + self.below(99_999),
            self.pick(&["CRITICAL", "WARNING", "NOTICE"])
        )
    }
    fn message(&mut self, modsec: bool) -> String {
        if modsec {
            let fixed = [
                ("ruleId", format!("\"{}\"", 900_000 + self.below(99_999))),
                ("match", self.string()),
                ("severity", format!("\"{}\"", self.below(6))),
            ];
            let details = self.object(2, &fixed);
            let message = self.string();
            self.object(2, &[("message", message), ("details", details)])
        } else {
            let fixed = [("id", self.number()), ("msg", self.string())];
            let data = self.object(2, &fixed);
            let message = self.string();
            self.object(2, &[("message", message), ("data", data)])
        }
    }
    fn message_of(&mut self, shape: Shape) -> String {
        match shape {
            Shape::ModSecurity => self.message(true),
            Shape::ModSecurity2 => self.message_2_9(),
            Shape::Coraza => self.message(false),
        }
    }
    /// The messages value: 0–6 messages, sometimes a single one, null, or absent (`None`).
    fn messages(&mut self, shape: Shape) -> Option<String> {
        match self.below(10) {
            0 => None,
            1 => Some(self.message_of(shape)),
            2 => Some("null".to_owned()),
            _ => {
                let n = self.below(7);
                let items: Vec<String> =
                    (0..n).map(|_| format!("{}{}{}", self.ws(), self.message_of(shape), self.ws())).collect();
                Some(format!("[{}{}]", items.join(","), self.ws()))
            }
        }
    }
    fn record(&mut self) -> String {
        let shape = Shape::BY_PRIORITY[self.below(3)];
        let messages = self.messages(shape);
        let mut fixed_tx = Vec::new();
        let mut fixed_audit = Vec::new();
        let mut fixed_top = Vec::new();
        match (shape, messages) {
            (Shape::ModSecurity, Some(m)) => fixed_tx.push(("messages", m)),
            (Shape::ModSecurity2, Some(m)) => fixed_audit.push(("messages", m)),
            (Shape::Coraza, Some(m)) => fixed_top.push(("messages", m)),
            _ => {}
        }
        let transaction = self.object(1, &fixed_tx);
        fixed_top.push(("transaction", transaction));
        if shape == Shape::ModSecurity2 || self.below(4) == 0 {
            let audit_data = self.object(1, &fixed_audit);
            fixed_top.push(("audit_data", audit_data));
        }
        if self.below(8) == 0 {
            // An earlier duplicate that the later key overrides.
            fixed_top.insert(0, ("messages", self.array(2)));
        }
        format!("{}{}{}", self.ws(), self.object(1, &fixed_top), self.ws())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn agrees_with_a_serde_json_value_split_and_keeps_bytes_outside_the_array(seed in any::<u64>()) {
        let input = Gen(seed).record();
        let expected = reference(input.as_bytes());
        prop_assert!(expected.is_some(), "generated records are valid: {}", input);
        let (expected, count) = expected.unwrap();
        let plan = Splitter::new(Limits::default()).plan(input.as_bytes()).unwrap();
        let (got, got_count) = split_counted(Limits::default(), input.as_bytes()).unwrap();
        prop_assert_eq!(got.len(), expected.len(), "{}", input);
        prop_assert_eq!(got_count, count, "message count of {}", input);
        prop_assert_eq!(plan.count, count);
        for (record, want) in got.iter().zip(&expected) {
            let parsed: Value = serde_json::from_slice(record).unwrap();
            prop_assert_eq!(&parsed, want, "{}", input);
            match plan.array {
                Some((_, start, end)) => {
                    prop_assert_eq!(&record[..start], &input.as_bytes()[..start]);
                    prop_assert_eq!(&record[record.len() - (input.len() - end)..], &input.as_bytes()[end..]);
                }
                None => prop_assert_eq!(record.as_slice(), input.as_bytes()),
            }
        }
    }

    #[test]
    fn corrupted_records_are_refused_exactly_when_serde_json_refuses_them(seed in any::<u64>(), cut in any::<usize>(), byte in any::<u8>()) {
        let input = Gen(seed).record().into_bytes();
        let mut broken = input.clone();
        let at = cut % broken.len();
        if byte % 2 == 0 { broken.truncate(at) } else { broken[at] = byte }
        let ours = split_counted(Limits::default(), &broken);
        match reference(&broken) {
            Some((expected, count)) => {
                let got = ours.map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&broken)));
                prop_assert_eq!(got.map(|(g, c)| (g.len(), c)), Ok((expected.len(), count)));
            }
            None => prop_assert!(ours.is_err(), "accepted what serde_json refuses: {}", String::from_utf8_lossy(&broken)),
        }
    }
}

#[test]
fn parts_say_where_the_message_and_the_client_address_are() {
    let mut splitter = Splitter::new(Limits::default());
    let input = br#"{"transaction":{"client_ip":"203.0.113.9","messages":[{"a":1},"two"]}}"#;
    let mut seen = Vec::new();
    splitter
        .split(input, |part, record| {
            let (s, e) = part.message.unwrap();
            let (cs, ce) = part.client.unwrap();
            seen.push((
                String::from_utf8(record[s..e].to_vec()).unwrap(),
                String::from_utf8(input[cs..ce].to_vec()).unwrap(),
            ));
        })
        .unwrap();
    assert_eq!(
        seen,
        [(r#"{"a":1}"#.to_owned(), r#""203.0.113.9""#.to_owned()), (r#""two""#.into(), r#""203.0.113.9""#.into())]
    );
    // ModSecurity 2.9's remote_address; a later duplicate key that is not a string replaces it.
    let v29 = br#"{"transaction":{"remote_address":"198.51.100.1"},"audit_data":{"messages":["m"]}}"#;
    let mut client = None;
    splitter.split(v29, |part, _| client = part.client.map(|(s, e)| v29[s..e].to_vec())).unwrap();
    assert_eq!(client.as_deref(), Some(&br#""198.51.100.1""#[..]));
    let dup = br#"{"transaction":{"client_ip":"a","client_ip":5,"messages":[1]}}"#;
    splitter.split(dup, |part, _| assert_eq!(part.client, None)).unwrap();
    // Passed through: no message span.
    splitter.split(br#"{"transaction":{"client_ip":"a"}}"#, |part, _| assert_eq!(part.message, None)).unwrap();
}

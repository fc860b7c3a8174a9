//! A generated, realistic ModSecurity v3 audit-log corpus shared by the WAF benchmarks.

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
pub fn generate(records: usize, seed: u64) -> Vec<u8> {
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

/// One raw ModSecurity v3 audit record from `client` for `GET uri` on `host`, with one message
/// per `(rule id, message, syslog severity)`, as the CDN's edges write them.
pub fn modsec_record(client: &str, host: &str, uri: &str, messages: &[(&str, &str, u8)]) -> String {
    let messages: Vec<serde_json::Value> = messages
        .iter()
        .map(|(id, msg, severity)| {
            serde_json::json!({"message": msg, "details": {"ruleId": id, "severity": severity.to_string(),
                "match": "Matched \"Operator `Rx'\"", "file": "/etc/modsecurity/crs/rules/REQUEST-942.conf",
                "lineNumber": "45", "data": "", "ver": "OWASP_CRS/4.7.0", "tags": ["attack-generic"]}})
        })
        .collect();
    serde_json::json!({"transaction": {"client_ip": client, "time_stamp": "Thu Dec 03 07:00:00 2026",
        "server_id": "edge-test", "unique_id": format!("{client}-{uri}"),
        "request": {"method": "GET", "http_version": 1.1, "uri": uri, "headers": {"Host": host, "User-Agent": "sqlmap/1.8"}},
        "response": {"http_code": 403}, "messages": messages}})
    .to_string()
}

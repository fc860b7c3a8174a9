//! Escaping for the bundle's files. Each file is in a different language and the customer runs
//! it, so every value is written through the filter of the file's language:
//!
//! - `py`: a Python string literal (quotes included);
//! - `yaml`: a YAML double-quoted scalar (quotes included);
//! - `logstash`: the inside of a Logstash double-quoted string;
//! - `props`: a librdkafka/kcat `key=value` value;
//! - `line`: text in a comment or in README.txt, kept on its line and free of display tricks.
//!
//! Logstash and the properties format have no escapes that every reader honours (Logstash
//! processes `\"` only with `config.support_escapes`), so their filters refuse what they cannot
//! write faithfully; the values they receive are validated long before (config, tenant names).

use std::fmt::{Display, Write};

/// Characters that may not appear raw in any file: control characters, Unicode line and
/// paragraph separators (line breaks for YAML 1.1 readers) and the bidirectional overrides
/// and isolates that make text display differently from what it is ("Trojan Source").
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{feff}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// A double-quoted literal with backslash escapes: the common subset of Python and YAML.
/// `\uXXXX` and `\UXXXXXXXX` mean the same in both.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_hazard(c) && (c as u32) <= 0xffff => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if is_hazard(c) => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Python string literal holding exactly `text`.
pub fn python(text: &str) -> String {
    quoted(text)
}

/// A YAML double-quoted scalar holding exactly `text`.
pub fn yaml(text: &str) -> String {
    quoted(text)
}

/// Text for one line of a comment or a plain-text file: hazards become visible `\u{..}`.
pub fn line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_hazard(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Why a value cannot be written into a format without escapes.
#[derive(Debug, thiserror::Error)]
#[error("{format}: cannot write {value:?} faithfully ({why})")]
pub struct Unwritable {
    format: &'static str,
    value: String,
    why: &'static str,
}

/// The inside of a Logstash double-quoted string. Logstash also substitutes `${VAR}` in plugin
/// settings, so a `${` is refused as well.
pub fn logstash(text: &str) -> Result<String, Unwritable> {
    let refuse = |why| Err(Unwritable { format: "logstash", value: text.to_owned(), why });
    if text.chars().any(is_hazard) {
        return refuse("control or line-break characters");
    }
    if text.contains(['"', '\\']) {
        return refuse("quotes and backslashes have no portable escape");
    }
    if text.contains("${") {
        return refuse("`${` is environment substitution");
    }
    Ok(text.to_owned())
}

/// A value of a `key=value` properties line as kcat reads it: the rest of the line, with
/// surrounding whitespace trimmed, no escapes.
pub fn props(text: &str) -> Result<String, Unwritable> {
    let refuse = |why| Err(Unwritable { format: "properties", value: text.to_owned(), why });
    if text.chars().any(is_hazard) {
        return refuse("control or line-break characters");
    }
    if text.trim() != text {
        return refuse("leading or trailing whitespace is trimmed by readers");
    }
    Ok(text.to_owned())
}

/// The same escapers as askama filters, for the bundle templates.
pub mod filters {
    use super::*;

    fn render_error(e: Unwritable) -> askama::Error {
        askama::Error::Custom(Box::new(e))
    }

    #[askama::filter_fn]
    pub fn py(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(python(&value.to_string()))
    }

    #[askama::filter_fn]
    pub fn yaml(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::yaml(&value.to_string()))
    }

    #[askama::filter_fn]
    pub fn line(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::line(&value.to_string()))
    }

    #[askama::filter_fn]
    pub fn logstash(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        super::logstash(&value.to_string()).map_err(render_error)
    }

    #[askama::filter_fn]
    pub fn props(value: impl Display, _: &dyn askama::Values) -> askama::Result<String> {
        super::props(&value.to_string()).map_err(render_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_literals_escape_quotes_backslashes_and_hazards() {
        assert_eq!(python(r#"a"""b"#), r#""a\"\"\"b""#);
        assert_eq!(python(r"\U0001"), r#""\\U0001""#);
        assert_eq!(yaml("x\ny"), r#""x\ny""#);
        assert_eq!(yaml("rtl\u{202e}x"), r#""rtl\u202ex""#);
        assert_eq!(python("caf\u{e9} 日本"), "\"caf\u{e9} 日本\"");
    }

    #[test]
    fn lines_stay_lines_and_show_hidden_characters() {
        assert_eq!(line("a\nb\u{2028}c\u{202e}d"), r"a\u{a}b\u{2028}c\u{202e}d");
        assert_eq!(line("Acme \"\"\" ${x} %{x} {{ }}"), "Acme \"\"\" ${x} %{x} {{ }}");
    }

    #[test]
    fn formats_without_escapes_refuse_what_they_cannot_hold() {
        assert_eq!(logstash("/etc/logstash/outflow").unwrap(), "/etc/logstash/outflow");
        assert!(logstash("a\"b").is_err());
        assert!(logstash("a\\b").is_err());
        assert!(logstash("${HOME}").is_err());
        assert!(props("secret\nbootstrap.servers=evil:9093").is_err());
        assert!(props(" padded").is_err());
        assert_eq!(props("k1:9093,k2:9093").unwrap(), "k1:9093,k2:9093");
    }
}

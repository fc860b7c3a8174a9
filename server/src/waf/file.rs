//! File mode: newline-delimited records in, newline-delimited split records out. For operators
//! (replaying a dump, checking a sample) and for benchmarking the kernel without a broker.

use std::io::{self, BufRead, Write};

use super::split::{Limits, Splitter};

/// What one run of the file mode did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileReport {
    /// Non-blank input lines.
    pub records_in: u64,
    /// Lines written.
    pub records_out: u64,
    /// Lines refused (reported on `errors`).
    pub invalid: u64,
}

/// Splits every line of `input` into `output`. Each refused line is reported on `errors` as
/// `line N: <reason>: <detail>` and skipped; blank lines are skipped silently. A trailing `\r`
/// (CRLF files) is not part of the record.
pub fn split_lines(
    limits: Limits,
    mut input: impl BufRead,
    mut output: impl Write,
    mut errors: impl Write,
) -> io::Result<FileReport> {
    let mut splitter = Splitter::new(limits);
    let mut report = FileReport::default();
    let mut line = Vec::with_capacity(64 * 1024);
    let mut number = 0u64;
    let mut write_error = None;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        number += 1;
        let record = line.strip_suffix(b"\n").unwrap_or(&line);
        let record = record.strip_suffix(b"\r").unwrap_or(record);
        if record.iter().all(|b| matches!(b, b' ' | b'\t')) {
            continue;
        }
        report.records_in += 1;
        let result = splitter.split(record, |_, out| {
            if write_error.is_none()
                && let Err(e) = output.write_all(out).and_then(|()| output.write_all(b"\n"))
            {
                write_error = Some(e);
            }
        });
        if let Some(e) = write_error.take() {
            return Err(e);
        }
        match result {
            Ok(n) => report.records_out += n as u64,
            Err(e) => {
                report.invalid += 1;
                writeln!(errors, "line {number}: {}: {e}", e.reason())?;
            }
        }
    }
    output.flush()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_reports_invalid_ones_by_number() {
        let input = concat!(
            "{\"messages\":[1,2]}\n",
            "\n",
            "{\"messages\":[1,\n",
            "{\"transaction\":{\"messages\":[{\"a\":1}]}}\r\n",
            "[1]\n",
            "not json\n",
            "{\"messages\":{}}"
        );
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let report = split_lines(Limits::default(), input.as_bytes(), &mut out, &mut err).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"messages\":1}\n{\"messages\":2}\n{\"transaction\":{\"messages\":{\"a\":1}}}\n{\"messages\":{}}\n"
        );
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "line 3: invalid-json: invalid JSON at byte 15: expected a value\nline 5: not-an-object: the record is not a JSON object\nline 6: invalid-json: invalid JSON at byte 0: expected an object\n"
        );
        assert_eq!(report, FileReport { records_in: 6, records_out: 4, invalid: 3 });
    }
}

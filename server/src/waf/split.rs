//! The split kernel: one WAF audit record in, one record per message out.
//!
//! A single pass over the bytes validates the whole document (RFC 8259 grammar, UTF-8, escapes,
//! no lone surrogates, nothing after the value) and remembers only where the messages array and
//! its elements are. Each output is then `prefix + element + suffix`, written into one reusable
//! buffer, so every byte outside the replaced array is the input's own. Nothing is emitted until
//! the whole record has been validated: an error never comes with partial output.
//!
//! Which `messages` counts: `.transaction.messages` (ModSecurity v3) when the record has a
//! `transaction` object holding `messages`, otherwise `.audit_data.messages` (ModSecurity 2.9,
//! `SecAuditLogFormat JSON`, whose messages are strings) when it has an `audit_data` object
//! holding `messages`, otherwise the top-level `.messages` (Coraza). With duplicate keys the last
//! one counts, as serde_json reads them (keys are compared after unescaping, so
//! `"messag\u0065s"` is `messages` too).
//!
//! Nesting depth is tracked with an explicit stack, never recursion, so depth is bounded only by
//! the size limit.

use std::fmt;

/// Limits a record must respect; anything over them is an error, not a truncated output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted record, in bytes.
    pub max_record_bytes: usize,
    /// Most messages one record may carry.
    pub max_messages: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_record_bytes: 1 << 20, max_messages: 1000 }
    }
}

/// Why a record cannot be split. `reason()` is the short code used in dead-letter headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitError {
    Empty,
    TooLarge { bytes: usize, limit: usize },
    InvalidUtf8 { at: usize },
    InvalidJson { at: usize, expected: &'static str },
    NotAnObject,
    TooManyMessages { count: usize, limit: usize },
}

impl SplitError {
    /// Short, stable code for headers and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            SplitError::Empty => "empty",
            SplitError::TooLarge { .. } => "too-large",
            SplitError::InvalidUtf8 { .. } => "invalid-utf8",
            SplitError::InvalidJson { .. } => "invalid-json",
            SplitError::NotAnObject => "not-an-object",
            SplitError::TooManyMessages { .. } => "too-many-messages",
        }
    }
}

impl fmt::Display for SplitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitError::Empty => f.write_str("empty record"),
            SplitError::TooLarge { bytes, limit } => {
                write!(f, "record of {bytes} bytes is over the {limit}-byte limit")
            }
            SplitError::InvalidUtf8 { at } => write!(f, "invalid UTF-8 at byte {at}"),
            SplitError::InvalidJson { at, expected } => write!(f, "invalid JSON at byte {at}: expected {expected}"),
            SplitError::NotAnObject => f.write_str("the record is not a JSON object"),
            SplitError::TooManyMessages { count, limit } => {
                write!(f, "{count} messages is over the limit of {limit}")
            }
        }
    }
}

impl std::error::Error for SplitError {}

/// Which format the messages array was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `.transaction.messages[]` (ModSecurity v3)
    ModSecurity,
    /// `.audit_data.messages[]`, an array of strings (ModSecurity 2.9)
    ModSecurity2,
    /// top-level `.messages[]`
    Coraza,
}

impl Shape {
    /// In the order the shapes are chosen when a record has several `messages` keys.
    const BY_PRIORITY: [Shape; 3] = [Shape::ModSecurity, Shape::ModSecurity2, Shape::Coraza];

    fn slot(self) -> usize {
        self as usize
    }
}

/// The result of scanning one record: where its messages array is, if it has one to split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The array's span `start..end` in the input and its shape; `None` means the record passes
    /// through unchanged (no messages, messages not an array, or an empty array).
    pub array: Option<(Shape, usize, usize)>,
    /// Element spans inside the array, in order.
    pub elements: Vec<(usize, usize)>,
    /// How many messages the record holds: see [`Part::count`].
    pub count: usize,
}

/// Where one output record stands among its raw record's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// 0-based position of the message this record holds; 0 for a record passed through.
    pub index: usize,
    /// Messages in the raw record: the array's length, 0 when it has none (no `messages`,
    /// `null` or an empty array), 1 when `messages` is a single value (a record already split).
    pub count: usize,
    /// Where this record's message sits in the output record (none for a record passed
    /// through), so its facts can be read without parsing the rest.
    pub message: Option<(usize, usize)>,
    /// The span, in the input, of the string value of `.transaction.client_ip` (or
    /// `.transaction.remote_address`, ModSecurity 2.9), quotes included.
    pub client: Option<(usize, usize)>,
}

/// Splits records, reusing its buffers from one record to the next.
#[derive(Debug, Default)]
pub struct Splitter {
    limits: Limits,
    scratch: Scratch,
    out: Vec<u8>,
}

impl Splitter {
    pub fn new(limits: Limits) -> Self {
        Self { limits, scratch: Scratch::default(), out: Vec::new() }
    }

    /// Validates `input` and calls `emit(part, record)` for each output record, in order.
    /// Returns how many records were emitted; on error nothing has been emitted.
    pub fn split(&mut self, input: &[u8], mut emit: impl FnMut(Part, &[u8])) -> Result<usize, SplitError> {
        let Some((_, start, end)) = self.scan(input)? else {
            emit(Part { index: 0, count: self.scratch.count, message: None, client: self.scratch.client }, input);
            return Ok(1);
        };
        let client = self.scratch.client;
        let (prefix, suffix) = (&input[..start], &input[end..]);
        let count = self.scratch.elements.len();
        for (index, &(s, e)) in self.scratch.elements.iter().enumerate() {
            self.out.clear();
            self.out.extend_from_slice(prefix);
            self.out.extend_from_slice(&input[s..e]);
            self.out.extend_from_slice(suffix);
            let message = Some((prefix.len(), prefix.len() + e - s));
            emit(Part { index, count, message, client }, &self.out);
        }
        Ok(count)
    }

    /// Scans `input` and says where its messages array is, without producing output.
    pub fn plan(&mut self, input: &[u8]) -> Result<Plan, SplitError> {
        let array = self.scan(input)?;
        let elements = if array.is_some() { self.scratch.elements.clone() } else { Vec::new() };
        Ok(Plan { array, elements, count: self.scratch.count })
    }

    /// Validates `input`, leaving the chosen array's element spans in the scratch space.
    fn scan(&mut self, input: &[u8]) -> Result<Option<(Shape, usize, usize)>, SplitError> {
        if input.len() > self.limits.max_record_bytes {
            return Err(SplitError::TooLarge { bytes: input.len(), limit: self.limits.max_record_bytes });
        }
        let array = scan(input, &mut self.scratch)?;
        if array.is_some() && self.scratch.elements.len() > self.limits.max_messages {
            return Err(SplitError::TooManyMessages {
                count: self.scratch.elements.len(),
                limit: self.limits.max_messages,
            });
        }
        Ok(array)
    }
}

/// Reusable state of [`scan`].
#[derive(Debug, Default)]
struct Scratch {
    stack: Vec<Frame>,
    /// Element spans of the chosen array (filled from the candidate lists at the end).
    elements: Vec<(usize, usize)>,
    /// The chosen `messages` value's message count (see [`Part::count`]).
    count: usize,
    /// The latest string value of the transaction's client address key (see [`Part::client`]).
    client: Option<(usize, usize)>,
    /// Elements of the latest candidate array of each shape (indexed by [`Shape::slot`]).
    candidates: [Vec<(usize, usize)>; 3],
    /// The latest value of each shape's candidate `messages` key.
    spans: [Candidate; 3],
    /// Unescaped key, for the rare keys written with escapes.
    key: Vec<u8>,
}

/// What an open container is, for the key/value bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// The document's top-level object.
    Top,
    /// The value of the top-level `transaction` key.
    Transaction,
    /// The value of the top-level `audit_data` key.
    AuditData,
    /// A candidate messages array.
    Messages(Shape),
    /// A `messages` value that is an object: it passes through, but still replaces an earlier
    /// duplicate.
    MessagesObject(Shape),
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    object: bool,
    role: Role,
    /// Where this container started, for spans of candidates.
    start: usize,
}

/// What the next value is, given the key before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Plain,
    /// Value of a top-level key `transaction`.
    Transaction,
    /// Value of a top-level key `audit_data`.
    AuditData,
    /// Value of the transaction's `client_ip` or `remote_address`.
    Client,
    /// Value of a `messages` key in the top, transaction or audit_data object.
    Messages(Shape),
    /// Element of a candidate messages array.
    Element(Shape),
}

/// Span of a candidate messages value: `(start, end, is_array)`.
type Candidate = Option<(usize, usize, bool)>;

fn json_err(at: usize, expected: &'static str) -> SplitError {
    SplitError::InvalidJson { at, expected }
}

fn scan(b: &[u8], s: &mut Scratch) -> Result<Option<(Shape, usize, usize)>, SplitError> {
    // UTF-8 is checked once over the whole record (std's validator has an ASCII fast path); the
    // grammar pass below then only has to look at ASCII structure.
    if let Err(e) = std::str::from_utf8(b) {
        return Err(SplitError::InvalidUtf8 { at: e.valid_up_to() });
    }
    s.stack.clear();
    s.candidates.iter_mut().for_each(Vec::clear);
    s.elements.clear();
    s.count = 0;
    s.client = None;
    s.spans = [None; 3];
    let mut i = skip_ws(b, 0);
    if i == b.len() {
        return Err(if b.is_empty() { SplitError::Empty } else { json_err(i, "a value") });
    }
    if b[i] != b'{' {
        // Rare path: tell valid JSON that is not an object from text that is not JSON at all.
        return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(b) {
            Ok(_) => SplitError::NotAnObject,
            Err(_) => json_err(i, "an object"),
        });
    }
    let mut slot = Slot::Plain;
    // Start of the value being parsed (for spans of candidates and elements).
    let mut value_start;
    // `i` points at the first byte of a value when entering the loop.
    'value: loop {
        value_start = i;
        let c = b[i];
        let scalar_end = match c {
            b'{' | b'[' => {
                let object = c == b'{';
                let role = match slot {
                    _ if s.stack.is_empty() => Role::Top,
                    Slot::Transaction if object => Role::Transaction,
                    Slot::AuditData if object => Role::AuditData,
                    Slot::Messages(shape) if !object => Role::Messages(shape),
                    Slot::Messages(shape) => Role::MessagesObject(shape),
                    _ => Role::Other,
                };
                if let Slot::Messages(shape) = slot
                    && !object
                {
                    s.candidates[shape.slot()].clear();
                }
                s.stack.push(Frame { object, role, start: value_start });
                i = skip_ws(b, i + 1);
                if i >= b.len() {
                    return Err(json_err(i, if object { "a key or '}'" } else { "a value or ']'" }));
                }
                if object {
                    if b[i] == b'}' {
                        i += 1;
                        None
                    } else {
                        slot = read_key(b, &mut i, s)?;
                        continue 'value;
                    }
                } else if b[i] == b']' {
                    i += 1;
                    None
                } else {
                    slot = match role {
                        Role::Messages(shape) => Slot::Element(shape),
                        _ => Slot::Plain,
                    };
                    continue 'value;
                }
            }
            b'"' => Some(scan_string(b, i + 1)?),
            b't' => Some(literal(b, i, b"true")?),
            b'f' => Some(literal(b, i, b"false")?),
            b'n' => Some(literal(b, i, b"null")?),
            b'-' | b'0'..=b'9' => Some(scan_number(b, i)?),
            _ => return Err(json_err(i, "a value")),
        };
        // A value just ended: either a scalar (`scalar_end`) or an empty container, or we fall
        // into the loop below that closes containers.
        let mut end;
        let mut ended_slot = slot;
        let mut ended_start = value_start;
        match scalar_end {
            Some(e) => {
                end = e;
                i = e;
            }
            None => {
                // Empty container just closed at i.
                end = i;
                let frame = s.stack.pop().expect("container was pushed");
                ended_start = frame.start;
            }
        }
        loop {
            // Record the value that ended at `end`, according to the slot it filled.
            match ended_slot {
                Slot::Messages(shape) => s.spans[shape.slot()] = Some((ended_start, end, b[ended_start] == b'[')),
                Slot::Element(shape) => s.candidates[shape.slot()].push((ended_start, end)),
                Slot::Client if b[ended_start] == b'"' => s.client = Some((ended_start, end)),
                Slot::Plain | Slot::Transaction | Slot::AuditData | Slot::Client => {}
            }
            let Some(parent) = s.stack.last().copied() else {
                // The top-level object is complete: only whitespace may follow.
                let rest = skip_ws(b, i);
                if rest != b.len() {
                    return Err(json_err(rest, "end of input"));
                }
                break 'value;
            };
            i = skip_ws(b, i);
            if i >= b.len() {
                return Err(json_err(i, if parent.object { "',' or '}'" } else { "',' or ']'" }));
            }
            match (b[i], parent.object) {
                (b',', true) => {
                    i = skip_ws(b, i + 1);
                    slot = read_key(b, &mut i, s)?;
                    continue 'value;
                }
                (b',', false) => {
                    i = skip_ws(b, i + 1);
                    if i >= b.len() {
                        return Err(json_err(i, "a value"));
                    }
                    slot = match parent.role {
                        Role::Messages(shape) => Slot::Element(shape),
                        _ => Slot::Plain,
                    };
                    continue 'value;
                }
                (b'}', true) | (b']', false) => {
                    i += 1;
                    end = i;
                    let frame = s.stack.pop().expect("parent exists");
                    ended_start = frame.start;
                    ended_slot = slot_of(frame.role, s.stack.last().map(|f| f.role));
                }
                (_, true) => return Err(json_err(i, "',' or '}'")),
                (_, false) => return Err(json_err(i, "',' or ']'")),
            }
        }
    }
    let chosen = Shape::BY_PRIORITY.into_iter().find_map(|shape| Some((shape, s.spans[shape.slot()]?)));
    match chosen {
        Some((shape, (start, end, true))) => {
            let elements = &s.candidates[shape.slot()];
            s.count = elements.len();
            if elements.is_empty() {
                return Ok(None);
            }
            s.elements.extend_from_slice(elements);
            Ok(Some((shape, start, end)))
        }
        // A single message (an object, or a 2.9 string) counts one; `null` none.
        Some((_, (start, _, false))) => {
            s.count = usize::from(b[start] != b'n');
            Ok(None)
        }
        None => Ok(None),
    }
}

/// The slot a closed container filled, told from its own role and its parent's.
fn slot_of(role: Role, parent: Option<Role>) -> Slot {
    match (role, parent) {
        (Role::Messages(shape) | Role::MessagesObject(shape), _) => Slot::Messages(shape),
        (Role::Transaction, _) => Slot::Transaction,
        (Role::AuditData, _) => Slot::AuditData,
        (_, Some(Role::Messages(shape))) => Slot::Element(shape),
        _ => Slot::Plain,
    }
}

/// Reads `"key"` and the `:` after it at `*i`, leaving `*i` on the value's first byte, and says
/// which slot that value fills.
fn read_key(b: &[u8], i: &mut usize, s: &mut Scratch) -> Result<Slot, SplitError> {
    let start = *i;
    if start >= b.len() || b[start] != b'"' {
        return Err(json_err(start, "a string key"));
    }
    let end = scan_string(b, start + 1)?;
    let role = s.stack.last().map(|f| f.role);
    let slot = match role {
        Some(Role::Top) | Some(Role::Transaction) | Some(Role::AuditData) => {
            let raw = &b[start + 1..end - 1];
            let key: &[u8] = if raw.contains(&b'\\') {
                unescape(raw, &mut s.key);
                &s.key
            } else {
                raw
            };
            match (role, key) {
                (Some(Role::Top), b"transaction") => Slot::Transaction,
                (Some(Role::Top), b"audit_data") => Slot::AuditData,
                (Some(Role::Top), b"messages") => Slot::Messages(Shape::Coraza),
                (Some(Role::Transaction), b"messages") => Slot::Messages(Shape::ModSecurity),
                (Some(Role::AuditData), b"messages") => Slot::Messages(Shape::ModSecurity2),
                (Some(Role::Transaction), b"client_ip" | b"remote_address") => Slot::Client,
                _ => Slot::Plain,
            }
        }
        _ => Slot::Plain,
    };
    // A later duplicate `transaction` or `audit_data` (object or not) replaces the earlier
    // one's messages.
    let replaced = match slot {
        Slot::Transaction => Some(Shape::ModSecurity),
        Slot::AuditData => Some(Shape::ModSecurity2),
        _ => None,
    };
    if let Some(shape) = replaced {
        s.candidates[shape.slot()].clear();
        s.spans[shape.slot()] = None;
    }
    // A later client key (or transaction) replaces the earlier one, whatever its value.
    if matches!(slot, Slot::Client | Slot::Transaction) {
        s.client = None;
    }
    let mut j = skip_ws(b, end);
    if j >= b.len() || b[j] != b':' {
        return Err(json_err(j, "':'"));
    }
    j = skip_ws(b, j + 1);
    if j >= b.len() {
        return Err(json_err(j, "a value"));
    }
    *i = j;
    Ok(slot)
}

/// Decodes an already validated string body (without quotes) into `out`.
fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        let byte = match c {
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let mut cp = hex4(&raw[i..i + 4]).expect("validated") as u32;
                i += 4;
                if (0xD800..0xDC00).contains(&cp) {
                    let low = hex4(&raw[i + 2..i + 6]).expect("validated") as u32;
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                }
                let ch = char::from_u32(cp).expect("validated");
                let mut buf = [0; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            other => other,
        };
        out.push(byte);
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

fn literal(b: &[u8], i: usize, word: &'static [u8]) -> Result<usize, SplitError> {
    if b.len() >= i + word.len() && &b[i..i + word.len()] == word {
        Ok(i + word.len())
    } else {
        Err(json_err(i, "a value"))
    }
}

/// Validates a number starting at `i` (RFC 8259 grammar); returns its end.
fn scan_number(b: &[u8], mut i: usize) -> Result<usize, SplitError> {
    if b[i] == b'-' {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        }
        _ => return Err(json_err(i, "a digit")),
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(json_err(i, "a digit after '.'"));
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return Err(json_err(i, "a digit in the exponent"));
        }
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    Ok(i)
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Bytes of `w` that are zero get their high bit set. Bytes above the lowest flagged one may be
/// flagged wrongly (a borrow), so only the lowest flag is exact, which is all the callers use.
#[inline]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// Flags (high bits) the bytes of `w` that end a run of plain string bytes: `"`, `\` or a
/// control byte below 0x20. Bytes >= 0x80 (UTF-8, already validated) never flag themselves.
#[inline]
fn special_bytes(w: u64) -> u64 {
    let control = w.wrapping_sub(LO * 0x20) & !w & HI;
    control | zero_bytes(w ^ (LO * b'"' as u64)) | zero_bytes(w ^ (LO * b'\\' as u64))
}

/// Validates a string body starting just after its opening quote; returns the index after the
/// closing quote.
#[inline]
fn scan_string(b: &[u8], mut i: usize) -> Result<usize, SplitError> {
    loop {
        // Jump eight bytes at a time to the next byte that needs a look.
        while i + 8 <= b.len() {
            let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
            let special = special_bytes(w);
            if special != 0 {
                i += (special.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        while i < b.len() && !matches!(b[i], b'"' | b'\\' | 0..0x20) {
            i += 1;
        }
        let Some(&c) = b.get(i) else {
            return Err(json_err(i, "'\"'"));
        };
        match c {
            b'"' => return Ok(i + 1),
            b'\\' => i = scan_escape(b, i + 1)?,
            _ => return Err(json_err(i, "no control characters in a string")),
        }
    }
}

/// Validates the escape whose letter is at `i`; returns the index after it.
fn scan_escape(b: &[u8], i: usize) -> Result<usize, SplitError> {
    match b.get(i) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 1),
        Some(b'u') => {
            let cp = b.get(i + 1..i + 5).and_then(hex4).ok_or(json_err(i + 1, "four hex digits"))?;
            match cp {
                0xD800..=0xDBFF => {
                    // A leading surrogate must be followed by an escaped trailing one (as serde_json
                    // demands), or the string holds no valid character.
                    let low = (b.get(i + 5..i + 7) == Some(b"\\u"))
                        .then(|| b.get(i + 7..i + 11).and_then(hex4))
                        .flatten()
                        .filter(|low| (0xDC00..=0xDFFF).contains(low));
                    match low {
                        Some(_) => Ok(i + 11),
                        None => Err(json_err(i + 5, "a trailing surrogate escape")),
                    }
                }
                0xDC00..=0xDFFF => Err(json_err(i - 1, "no lone trailing surrogate")),
                _ => Ok(i + 5),
            }
        }
        _ => Err(json_err(i, "an escape character")),
    }
}

fn hex4(h: &[u8]) -> Option<u16> {
    if h.len() != 4 {
        return None;
    }
    let mut v = 0u16;
    for &c in h {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return None,
        };
        v = v << 4 | d as u16;
    }
    Some(v)
}

#[cfg(test)]
#[path = "split_tests.rs"]
mod tests;

#!/usr/bin/env python3
"""Applies the grok filter of a rendered kafka-logstash.conf to access-log lines, the way
Logstash's grok filter does, with the grok implementation of pygrok (installed, pinned, by
ops/install-deps.sh):

    grok_check.py kafka-logstash.conf LINES_FILE

The conf is parsed as Logstash reads it (comments, quoted strings without escape processing,
hashes and arrays), and the patterns are the `match` of the `grok` filter on "message", tried in
order until one matches (break_on_match). Captures that matched nothing are left out
(keep_empty_captures is off); `:int` and `:float` convert. The date filter's field and formats
are reported, and the field's value is parsed with the one format the bundle uses.

Prints one JSON document: {"patterns": [...], "date": {"field", "formats"}, "results":
[{"line", "pattern" (index or null), "fields", "time_ok"}]}.

pygrok names captures with Python group names (word characters only) while Logstash accepts
names such as `content-type`: each capture name is swapped for a word alias before compiling
and swapped back in the results. The patterns themselves are passed as they are.
"""
import datetime
import json
import re
import sys

from pygrok import Grok


class ConfError(Exception):
    pass


def tokens(text):
    """Logstash config tokens: (kind, value). Strings keep their backslashes (no escapes)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ConfError(f"unterminated string at {i}")
            yield ("string", text[i + 1:j])
            i = j + 1
        elif text.startswith("=>", i):
            yield ("arrow", "=>")
            i += 2
        elif c in "{}[],":
            yield (c, c)
            i += 1
        else:
            m = re.compile(r"[A-Za-z0-9_.@-]+").match(text, i)
            if not m:
                raise ConfError(f"unexpected {c!r} at {i}")
            yield ("word", m.group())
            i = m.end()


class Parser:
    def __init__(self, text):
        self.toks = list(tokens(text))
        self.at = 0

    def peek(self):
        return self.toks[self.at] if self.at < len(self.toks) else (None, None)

    def take(self, kind=None):
        tok = self.peek()
        if tok[0] is None or (kind is not None and tok[0] != kind):
            raise ConfError(f"expected {kind}, got {tok}")
        self.at += 1
        return tok[1]

    def value(self):
        kind, _ = self.peek()
        if kind == "string":
            return self.take()
        if kind == "word":
            word = self.take()
            # A codec with settings: `plain { charset => "UTF-8" }`.
            return (word, self.value()) if self.peek()[0] == "{" else word
        if kind == "[":
            self.take("[")
            items = []
            while self.peek()[0] != "]":
                items.append(self.value())
                if self.peek()[0] == ",":
                    self.take(",")
            self.take("]")
            return items
        if kind == "{":
            self.take("{")
            pairs = []
            while self.peek()[0] != "}":
                key = self.value()
                self.take("arrow")
                pairs.append((key, self.value()))
                if self.peek()[0] == ",":
                    self.take(",")
            self.take("}")
            return pairs
        raise ConfError(f"expected a value, got {self.peek()}")

    def plugins(self):
        """`name { setting => value ... }` repeated, up to the closing brace."""
        out = []
        while self.peek()[0] == "word":
            name = self.take("word")
            if name in ("if", "else"):
                raise ConfError("conditionals are not supported by this checker")
            self.take("{")
            settings = []
            while self.peek()[0] != "}":
                key = self.take()
                self.take("arrow")
                settings.append((key, self.value()))
            self.take("}")
            out.append((name, settings))
        return out

    def sections(self):
        out = {}
        while self.peek()[0] is not None:
            section = self.take("word")
            self.take("{")
            out.setdefault(section, []).extend(self.plugins())
            self.take("}")
        return out


def setting(settings, key):
    found = [v for k, v in settings if k == key]
    if len(found) != 1:
        raise ConfError(f"expected one {key!r} setting, found {len(found)}")
    return found[0]


def grok_patterns(filters):
    groks = [s for name, s in filters if name == "grok"]
    if len(groks) != 1:
        raise ConfError(f"expected one grok filter, found {len(groks)}")
    match = setting(groks[0], "match")
    if isinstance(match, list) and match and isinstance(match[0], tuple):
        pairs = match
    elif isinstance(match, list) and len(match) == 2:
        pairs = [tuple(match)]  # legacy form: ["message", "pattern"]
    else:
        raise ConfError(f"unexpected grok match {match!r}")
    patterns = [p for field, p in pairs if field == "message"]
    if len(patterns) != 1:
        raise ConfError("expected one match on message")
    return patterns[0] if isinstance(patterns[0], list) else [patterns[0]]


def date_filter(filters):
    dates = [s for name, s in filters if name == "date"]
    if len(dates) != 1:
        raise ConfError(f"expected one date filter, found {len(dates)}")
    field, *formats = setting(dates[0], "match")
    return {"field": field, "formats": formats}


CAPTURE = re.compile(r"%\{(\w+):([^:}]+)((?::\w+)?)\}")


def compile_pattern(pattern):
    """pygrok Grok for `pattern`, with every capture name replaced by a word alias."""
    names = {}

    def alias(m):
        name = f"f{len(names)}"
        names[name] = m.group(2)
        return "%{" + m.group(1) + ":" + name + m.group(3) + "}"

    return Grok(CAPTURE.sub(alias, pattern)), names


# The only date format the bundle's date filters use, and its strptime spelling.
JODA_TO_STRPTIME = {"dd/MMM/yyyy:HH:mm:ss Z": "%d/%b/%Y:%H:%M:%S %z"}


def main():
    conf_path, lines_path = sys.argv[1:3]
    conf = Parser(open(conf_path, encoding="utf-8").read()).sections()
    filters = conf.get("filter", [])
    patterns = grok_patterns(filters)
    date = date_filter(filters)
    if date["formats"] != list(JODA_TO_STRPTIME):
        raise ConfError(f"date formats {date['formats']} are not the one this checker knows")
    compiled = [compile_pattern(p) for p in patterns]
    results = []
    for line in open(lines_path, encoding="utf-8").read().splitlines():
        result = {"line": line, "pattern": None, "fields": None, "time_ok": False}
        for index, (grok, names) in enumerate(compiled):
            captures = grok.match(line)
            if captures is None:
                continue
            fields = {names[k]: v for k, v in captures.items() if v is not None and v != ""}
            result.update(pattern=index, fields=fields)
            try:
                datetime.datetime.strptime(str(fields.get(date["field"])), JODA_TO_STRPTIME[date["formats"][0]])
                result["time_ok"] = True
            except ValueError:
                pass
            break
        results.append(result)
    json.dump({"patterns": patterns, "date": date, "results": results}, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except ConfError as e:
        sys.exit(f"grok_check.py: {e}")

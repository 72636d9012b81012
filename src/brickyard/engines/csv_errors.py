"""DuckDB's CSV errors as one line naming the file and the line: `raw/x/a.csv:502: <what>`.

DuckDB reports a malformed CSV line in a long message: `CSV Error on Line: 502`, the line's
text, the problem, possible fixes, then the reader's settings. When the bad line is among
the first ones, the sniffer (which reads a sample before the scan) fails first: it says only
that it could not detect the dialect, with no line, or, for an over-long line, `Line: 1`.
`csv_problem` reads such a message; `locate` reads one file again with its dialect fixed and
no sniffing, where DuckDB's scanner names the first bad line exactly.

>>> problem = csv_problem(
...     "Invalid Input Error: CSV Error on Line: 3\\nOriginal Line: 4,5,6,7\\n"
...     "Expected Number of Columns: 3 Found: 4\\n  file = /lake/raw/x/a.csv\\n"
... )
>>> problem.at("raw/x/a.csv")
"raw/x/a.csv:3: 4 fields where 3 were expected: '4,5,6,7'"
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import duckdb

Kind = Literal["fields", "quote", "line_size", "encoding", "dialect", "other"]
SHOWN_CHARS = 60  # of the bad line's text, in a message
# Records `locate` reads when DuckDB's sniffer failed: its sample is 20,480 rows.
SNIFFED_RECORDS = 1_000_000
# A delimiter no text line holds: reading a file with it gives each line as one value.
LINE_DELIMITER = "\x1f\x1e\x1d\x1c"

_LINE = re.compile(r"CSV Error on Line: (\d+)")
_FILE = re.compile(r"^\s*file = (.+?)\s*$", re.MULTILINE)
_SNIFFED_FILE = re.compile(r'Error when sniffing file "([^"]+)"')
_ORIGINAL = re.compile(r"^Original Line: ?(.*)$", re.MULTILINE)
_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")
_LINE_SIZE = re.compile(r"Maximum line size of (\d+) bytes exceeded\.\s*Actual Size:\s*(\d+) bytes")
_ENCODING = re.compile(r"Invalid unicode[^\n]*?(?:This file is not ([\w-]+) encoded)?", re.IGNORECASE)
_SETTING = re.compile(r"^\s*(delimiter|quote|escape|header) = (.*?) \((?:Set By User|Auto-Detected)\)\s*$", re.MULTILINE)
_CANDIDATES = re.compile(r"^Delimiter Candidates: (.*)$", re.MULTILINE)
_QUOTE_CANDIDATES = re.compile(r"^Quote/Escape Candidates: \['(.*?)','(.*?)'\]\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Dialect:
    """A fixed CSV dialect (RFC 4180 by default: comma, double quotes doubled to escape, a
    header line)."""

    delimiter: str = ","
    quote: str = '"'
    escape: str = '"'
    header: bool = True
    encoding: str | None = None
    max_line_size: int | None = None

    def arguments(self) -> list[str]:
        """read_csv arguments for the dialect, with no skipped or comment lines."""
        found = [
            f"header={'true' if self.header else 'false'}",
            f"delim={_literal(self.delimiter)}",
            f"quote={_literal(self.quote)}",
            f"escape={_literal(self.escape)}",
            "skip=0",
            "comment=''",
        ]
        if self.encoding is not None:
            found.append(f"encoding={_literal(self.encoding)}")
        if self.max_line_size is not None:
            found.append(f"max_line_size={int(self.max_line_size)}")
        return found

    @classmethod
    def from_message(cls, text: str) -> Dialect:
        """The dialect a DuckDB CSV error says it read with (its settings, or the sniffer's
        only candidate); the default for what it does not say."""
        dialect = cls()
        for name, value in _SETTING.findall(text):
            value = "" if value == "(empty)" else value.replace("\\t", "\t")
            if name == "header":
                dialect = replace(dialect, header=value.lower() == "true")
            elif name == "delimiter" and value:
                dialect = replace(dialect, delimiter=value)
            elif name == "quote":
                dialect = replace(dialect, quote=value)
            elif name == "escape":
                dialect = replace(dialect, escape=value)
        candidates = _CANDIDATES.search(text)
        delimiters = re.findall(r"'([^']*)'", candidates.group(1)) if candidates else []
        if len(delimiters) == 1 and delimiters[0]:
            dialect = replace(dialect, delimiter=delimiters[0].replace("\\t", "\t"))
        quotes = _QUOTE_CANDIDATES.search(text)
        if quotes:
            quote, escape = (("" if "(no " in q else q) for q in quotes.groups())
            dialect = replace(dialect, quote=quote, escape=escape)
        size = _LINE_SIZE.search(text)
        if size:
            dialect = replace(dialect, max_line_size=int(size.group(1)))
        return dialect


@dataclass(frozen=True)
class CsvProblem:
    """What is wrong in a CSV file, and where."""

    kind: Kind
    what: str
    file: str | None = None  # as DuckDB names it (the path or URI it was given)
    line: int | None = None
    size: int | None = None  # of an over-long line, in bytes
    text: str | None = None  # the bad line's text, shortened and quoted, when shown

    def at(self, name: str, *, show_text: bool = True) -> str:
        """`name:line: what: 'text'` (`name: what` when the line is unknown); without the
        line's text when `show_text` is false (a file holding PII values)."""
        what = f"{self.what}: {self.text}" if self.text and show_text else self.what
        return f"{name}:{self.line}: {what}" if self.line else f"{name}: {what}"

    def hint(self, *, task: bool) -> str:
        """The next thing to try: the task's reader options (`task=True`) or read_csv's."""
        if self.kind == "fields":
            return (
                "fix the line (a value that holds the delimiter must be quoted), or "
                + ("set the task's options (delimiter, quote, header) if the file uses another dialect"
                   if task else "name the dialect in read_csv (delim, quote, header); "
                   "store_rejects=true with ignore_errors=true skips bad lines and lists them in reject_errors")
            )
        if self.kind == "quote":
            return "close the quote (a quote inside a quoted value is written twice), or " + (
                "set options: {quote: ''} on the task if the file does not quote values"
                if task else "pass quote='' to read_csv if the file does not quote values"
            )
        if self.kind == "line_size":
            limit = suggested_line_size(self.size)
            return (
                f"raise the limit with options: {{max_line_size: {limit}}} on the task (bytes), or fix the line"
                if task else f"pass max_line_size={limit} to read_csv, or fix the line"
            )
        if self.kind == "encoding":
            return (
                "set options: {encoding: latin-1} (or utf-16) on the task"
                if task else "pass encoding='latin-1' (or 'utf-16') to read_csv"
            )
        if self.kind == "dialect":
            return (
                "check the task's reader options (delimiter, quote, header) against the file"
                if task else "name the dialect in read_csv (delim, quote, header)"
            )
        return "check the file, or set the task's reader options" if task else "check the file"


def suggested_line_size(size: int | None) -> int:
    """A max_line_size that holds a line of `size` bytes: the next whole million above it
    (DuckDB counts a line's end in some places and not in others)."""
    return int(math.ceil(((size or 2_000_000) + 2) / 1_000_000) * 1_000_000)


def csv_problem(text: str) -> CsvProblem | None:
    """The problem a DuckDB CSV error message describes (None when it is not one)."""
    sniffed = _SNIFFED_FILE.search(text)
    line = _LINE.search(text)
    if sniffed or "CSV Sniffer" in text:
        return CsvProblem(
            "dialect",
            "DuckDB could not read it as CSV with that dialect (delimiter, quote, header)",
            file=sniffed.group(1) if sniffed else None,
        )
    if line is None:
        return None
    file = _FILE.search(text)
    found = CsvProblem("other", _described(text), file=file.group(1) if file else None, line=int(line.group(1)))
    if fields := _FIELDS.search(text):
        expected, got = fields.groups()
        return replace(found, kind="fields", what=f"{got} fields where {expected} were expected", text=_shown(text))
    if "Value with unterminated quote found" in text:
        return replace(found, kind="quote", what="a quoted value is never closed")
    if size := _LINE_SIZE.search(text):
        limit, actual = (int(n) for n in size.groups())
        return replace(
            found, kind="line_size", size=actual,
            what=f"the line is {actual} bytes, over the limit of {limit} bytes (max_line_size)",
        )
    if encoding := _ENCODING.search(text):
        name = (encoding.group(1) or "utf-8").upper()
        return replace(found, kind="encoding", what=f"the text is not valid {name}")
    return found


def locate(
    con: duckdb.DuckDBPyConnection,
    uri: str,
    dialect: Dialect,
    *,
    extra: Sequence[str] = (),
    limit: int | None = None,
) -> CsvProblem | None:
    """The first malformed line of one CSV file, read with `dialect` fixed and without
    DuckDB's sniffer (which names no line); None when the file reads clean that way or
    cannot be read at all. `extra` are more read_csv arguments (e.g. nullstr); `limit`
    stops after that many records (the read stops at the first bad line anyway)."""
    import duckdb

    width = _first_record_width(con, uri, dialect)
    if not isinstance(width, int):
        return width
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    arguments = ", ".join([*dialect.arguments(), *extra, "auto_detect=false", f"columns={columns}"])
    scan = f"SELECT 1 FROM read_csv({_literal(uri)}, {arguments})" + (f" LIMIT {int(limit)}" if limit else "")
    try:
        con.sql(f"SELECT count(*) FROM ({scan})").fetchall()
    except (duckdb.Error, OSError) as exc:
        problem = csv_problem(str(exc))
        if problem is not None and problem.line is not None:
            return problem
    return None


def _first_record_width(
    con: duckdb.DuckDBPyConnection, uri: str, dialect: Dialect
) -> int | CsvProblem | None:
    """How many fields the file's first line has (its header, or first record). Reading
    lines as whole values may stop at a line too long or not decodable (DuckDB reads ahead):
    that line's problem is returned instead; None when the file cannot be read at all."""
    import duckdb

    plain = replace(dialect, delimiter=LINE_DELIMITER, quote="", escape="", header=False)
    arguments = ", ".join([*plain.arguments(), "auto_detect=false", "columns={'line': 'VARCHAR'}"])
    try:
        rows = con.sql(f"SELECT line FROM read_csv({_literal(uri)}, {arguments}) LIMIT 1").fetchall()
    except (duckdb.Error, OSError) as exc:
        problem = csv_problem(str(exc))
        return problem if problem is not None and problem.line is not None else None
    if not rows:
        return None
    first = str(rows[0][0] or "").lstrip("\ufeff")
    if len(dialect.delimiter) != 1:
        return max(1, first.count(dialect.delimiter) + 1)
    reader = csv.reader(
        [first],
        delimiter=dialect.delimiter,
        quotechar=dialect.quote or None,
        quoting=csv.QUOTE_MINIMAL if dialect.quote else csv.QUOTE_NONE,
        escapechar=dialect.escape if dialect.escape and dialect.escape != dialect.quote else None,
        doublequote=dialect.escape == dialect.quote,
    )
    return max(1, len(next(reader, [""])))


def _shown(text: str) -> str:
    """The bad line's text as DuckDB quoted it, shortened, in quotes."""
    original = _ORIGINAL.search(text)
    line = original.group(1) if original else ""
    if len(line) > SHOWN_CHARS:
        line = line[:SHOWN_CHARS] + "..."
    return repr(line)


def _described(text: str) -> str:
    """DuckDB's own description of a CSV problem: its message without the line number,
    the line's text, the possible fixes and the reader's settings."""
    kept = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or raw.startswith("  ") or line.startswith(("*", "Original Line:")):
            continue
        if line.startswith(("Possible fixes", "Possible Solution")):
            break
        kept.append(_LINE.sub("", line).replace("Invalid Input Error:", "").strip(" :"))
    return " ".join(part for part in kept if part) or "malformed line"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"

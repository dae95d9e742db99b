"""Read claim exports: raw lines for the output, typed canonical columns for the rules.

Every line read comes out exactly once and in order: the raw frame keeps each input cell as
text, untouched, for the annotated file; the typed frame holds the canonical columns parsed to
their types. A value that cannot be parsed does not stop the run: it becomes missing in the
typed frame and is described in `unreadable_values`, which a rule reports as `invalid_input`.
Errors name files, columns and rows, never a cell value of a PHI column.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import json
import math
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scrubber import yamlfile
from scrubber.errors import InputError
from scrubber.fields import COLUMNS_BY_NAME, PAYER_TYPES, PHI_COLUMNS, REQUIRED_COLUMNS, FieldType

MAX_CELL = 1000  # longer values in a contract column are unreadable (the engine compares 16-bit lengths, P14)
# [0-9], not \d: full-width and other Unicode digits are not read as numbers.
# Dates as exports write them, each pattern naming the year, month and day: ISO (with a time of day,
# as databases unload a datetime), YYYY/MM/DD, YYYYMMDD (the X12 D8 form), and US month-first with
# / or - and a 4- or 2-digit year (00-68 is 20xx, 69-99 19xx, as POSIX strptime reads %y), with
# the time of day reports and Excel re-saves append.
_TIME = r"(?:[T ](?:[01]?[0-9]|2[0-3])(?::[0-5][0-9]){0,2}(?:\.[0-9]+)?(?: ?[AaPp]\.?[Mm]\.?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
_DATE_PATTERNS = (
    rf"^(?P<y>[0-9]{{4}})-(?P<m>[0-9]{{2}})-(?P<d>[0-9]{{2}}){_TIME}$",
    rf"^(?P<y>[0-9]{{4}})/(?P<m>[0-9]{{1,2}})/(?P<d>[0-9]{{1,2}}){_TIME}$",
    r"^(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})$",
    rf"^(?P<m>[0-9]{{1,2}})(?P<sep>[/-])(?P<d>[0-9]{{1,2}})(?P=sep)(?P<y>[0-9]{{4}}|[0-9]{{2}}){_TIME}$",
)


@dataclass
class ClaimBatch:
    """The lines of one run: raw cells for output, typed canonical columns for the rules."""

    raw: pd.DataFrame  # every input column as read, original headers, in input order
    typed: pd.DataFrame  # canonical columns (contract names), parsed; plus input problem fields
    sources: list[tuple[str, int]]  # (file name, line count) in order


# canonical column -> export header; a list field (modifiers, dx_codes) may name several headers,
# for exports with a column per code (Modifier 1..4, Diagnosis 1..12).
Mapping = dict[str, str | list[str]]
LIST_FIELDS = ("modifiers", "dx_codes")


def mapped_headers(header: str | list[str]) -> list[str]:
    return header if isinstance(header, list) else [header]


def load_mapping(path: Path | None) -> Mapping:
    """Read a column mapping file: `canonical_name: "Export Header"` (or a list of headers for
    modifiers and dx_codes, joined in order)."""
    if path is None:
        return {}
    data, problems = yamlfile.load(path)
    if problems:
        raise InputError(str(problems[0]))
    form = ("expected lines of the form canonical_name: \"Export Header\" "
            f"(a list of headers only for {' and '.join(LIST_FIELDS)})")
    if not isinstance(data, dict):
        raise InputError(f"{path}: {form}")
    for key, value in data.items():
        if not (isinstance(value, str) or (key in LIST_FIELDS and isinstance(value, list) and value
                                           and all(isinstance(h, str) for h in value))):
            line, col = yamlfile.value_pos(data, key)
            raise InputError(f"{path}:{line}:{col}: {key} is mapped to {_yaml_kind(value)}; {form}")
    unknown = [k for k in data if k not in COLUMNS_BY_NAME]
    if unknown:
        from scrubber.loader import did_you_mean

        line, col = yamlfile.key_pos(data, unknown[0])
        raise InputError(
            f"{path}:{line}:{col}: unknown canonical column '{unknown[0]}'"
            f"{did_you_mean(unknown[0], COLUMNS_BY_NAME)}; expected one of: {', '.join(COLUMNS_BY_NAME)}"
        )
    first_for: dict[str, str] = {}
    for canonical, headers in data.items():
        for header in mapped_headers(headers):
            if header in first_for:  # one export column read as two (a member id as claim_id would be echoed)
                line, col = yamlfile.value_pos(data, canonical)
                twice = (f"is listed twice for {canonical}" if first_for[header] == canonical
                         else f"is mapped to both {first_for[header]} and {canonical}")
                raise InputError(f"{path}:{line}:{col}: header \"{header}\" {twice}; map each export column to one canonical column once")
            first_for[header] = canonical
    return {str(k): [str(h) for h in v] if isinstance(v, list) else str(v) for k, v in data.items()}


def _yaml_kind(value: Any) -> str:
    """What a mapping value is, for an error (the value itself may be a header: not echoed)."""
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bool):
        return "true or false"
    return "a number" if isinstance(value, int | float) else "a date"


def read_raw(path: Path) -> pd.DataFrame:
    """Read one export with every cell as text (None for a missing cell in typed formats)."""
    return next(iter_raw(path, None))


def iter_raw(path: Path, chunk_lines: int | None) -> Iterator[pd.DataFrame]:
    """One export in pieces of about `chunk_lines` lines (None: the whole file as one piece), each
    read exactly as a whole file is, so that memory stays bounded on exports of millions of lines.
    CSV and Parquet are read piece by piece; a JSON Lines file is read whole (its columns are the
    keys of every line)."""
    name = path.name.lower()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not (name.endswith((".parquet", ".jsonl", ".ndjson", ".csv", ".csv.gz")) or path.is_dir()):
        raise InputError(f"{path}: unknown file type; expected .csv, .csv.gz, .parquet, .jsonl or a Parquet dataset folder")
    try:
        if name.endswith(".parquet") or path.is_dir():  # a folder is a Parquet dataset
            yield from _parquet_pieces(path, chunk_lines)
        elif name.endswith((".jsonl", ".ndjson")):
            yield _read_jsonl(path)
        else:
            yield from _csv_pieces(path, chunk_lines)
    except InputError:
        raise
    except Exception as exc:
        if name.endswith(".gz") and isinstance(exc, OSError | EOFError):
            raise InputError(f"{path}: not a valid gzip file") from None
        raise unreadable(path, exc) from None


def _dataset_files(path: Path) -> list[Path]:
    """A Parquet input's files: the file itself, or a folder's .parquet files in path order, leaving
    out names starting with `_` or `.` (a Spark job's `_temporary/`, `.crc` files) and other files
    (a README or a manifest beside the data). A folder without any is an error that says so."""
    if not path.is_dir():
        return [path]

    def counted(file: Path) -> bool:
        parts = file.relative_to(path).parts
        return file.name.lower().endswith(".parquet") and not any(p.startswith(("_", ".")) for p in parts)

    files = sorted(f for f in path.rglob("*") if f.is_file() and counted(f))
    if not files:
        raise InputError(f"{path}: a folder is read as a Parquet dataset, and this one holds no .parquet file "
                         "(files under names starting with _ or . are not read); "
                         "give CSV or JSON Lines exports as files")
    return files


def parquet_dataset(path: Path) -> Any:
    """A Parquet file or dataset folder as Arrow reads it, with every file's columns (a column only
    later files have is not dropped) and hive partition keys (`payer_type=medicare/`) as columns."""
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    files = [str(f) for f in _dataset_files(path)]
    # Partition keys from the folders below the dataset's own (a single file's folders are not read as keys).
    base = {"partitioning": "hive", "partition_base_dir": str(path)} if path.is_dir() else {}
    found = ds.dataset(files, format="parquet", **base)
    schema = found.schema
    for file in files[1:]:
        try:
            schema = pa.unify_schemas([schema, pq.read_schema(file)], promote_options="permissive")
        except pa.ArrowTypeError as exc:  # Arrow names the column and the two types, never a value
            raise InputError(f"{file}: a column's type differs from the dataset's earlier files ({exc}); "
                             "write the column with one type in every file") from None
    return ds.dataset(files, format="parquet", schema=schema, **base)


def unreadable(path: Path, exc: Exception) -> InputError:
    """The error for an input that cannot be read: the file and the kind of failure, never its text."""
    return InputError(f"{path}: cannot be read ({exc.__class__.__name__})")


def _parquet_pieces(path: Path, chunk_lines: int | None) -> Iterator[pd.DataFrame]:
    import pyarrow as pa

    dataset = parquet_dataset(path)
    if chunk_lines is None:
        yield _as_text(dataset.to_table())
        return
    empty = True
    for batch in dataset.to_batches(batch_size=chunk_lines):
        if batch.num_rows:
            empty = False
            yield _as_text(pa.Table.from_batches([batch]))
    if empty:
        yield _as_text(dataset.schema.empty_table())


def cell_text(value: Any) -> str | None:
    """A typed cell (Parquet, JSON Lines) as the text a CSV export would hold.

    - missing, or NaN (how pandas writes a gap in a number column): None;
    - a whole-number float: the whole number (pandas writes an integer column with a gap, an NPI or
      units column, as float64: 1234567893.0 is NPI 1234567893);
    - a list (a diagnosis or modifier list): its items joined with ';', the contract's separator;
    - a mapping: its JSON text (no contract column holds one; the typed reader reports it).
    """
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, list | tuple):
        items = [t for t in map(cell_text, value) if t]
        return ";".join(items) if items else None
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


_PANDAS_INDEX = re.compile(r"__index_level_[0-9]+__")


def _as_text(table: Any) -> pd.DataFrame:
    """Every column of an Arrow table as text: strings, integers, dates and decimals cast by Arrow
    (an int column with a null stays `30`, not pandas' `30.0`); a timestamp at midnight as its date;
    floats, lists and structs cell by cell (`cell_text`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def python_text(column: Any) -> Any:
        return pa.array([cell_text(v) for v in column.to_pylist()], pa.string())

    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if _PANDAS_INDEX.fullmatch(name):  # pandas' own bookkeeping (a filtered frame's index), not data
            continue
        if pa.types.is_floating(column.type):
            columns[name] = python_text(column)
            continue
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            # A date stored as a timestamp (pandas' datetime64) is the date, as pandas' to_csv writes it.
            midnight = pc.fill_null(pc.equal(pc.cast(pc.cast(column, pa.date32()), column.type), column), False)
            columns[name] = pc.if_else(midnight, pc.strftime(column, format="%Y-%m-%d"), pc.cast(column, pa.string()))
            continue
        try:
            columns[name] = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            columns[name] = python_text(column)
    return pa.table(columns).to_pandas()


def _windows_1252_bytes(error: UnicodeError) -> tuple[str, int]:
    """Decode error handler: the bytes that are not UTF-8, read as Windows-1252 (what
    practice-management systems on Windows export), or as latin-1 for the five bytes cp1252 leaves
    undefined: every byte reads as some character, and the valid UTF-8 around it stays UTF-8."""
    assert isinstance(error, UnicodeDecodeError)
    bad = error.object[error.start : error.end]
    return "".join(bytes([b]).decode("cp1252", errors="strict") if b not in _CP1252_UNDEFINED else chr(b)
                   for b in bad), error.end


_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
codecs.register_error("scrubber-cp1252", _windows_1252_bytes)


def _decode(data: bytes) -> str:
    """UTF-8 text, where any byte that is not UTF-8 reads as Windows-1252: a whole cp1252 export,
    or one name pasted from a cp1252 source into a UTF-8 one, without garbling the rest of its line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="scrubber-cp1252")


_BLOCK = 8 << 20  # bytes read at a time when an export is read in pieces


_SPREADSHEET = "an Excel workbook, not CSV text; save the sheet as CSV (UTF-8) and scrub that"
_NOT_TEXT = {  # what a file that is not CSV text starts with, and what to say
    b"PK\x03\x04": _SPREADSHEET,  # .xlsx (a zip)
    b"\xd0\xcf\x11\xe0": _SPREADSHEET,  # .xls (an OLE2 file)
    b"\x1f\x8b": "gzip-compressed; name it .csv.gz",
    b"PAR1": "a Parquet file; name it .parquet",
    b"%PDF": "a PDF document, not CSV text",
    b"\x89PNG": "a PNG image, not CSV text",
}


def _refuse_binary(path: Path, stream: Any) -> None:
    """A workbook, an archive or a document renamed .csv would read as noise: say what it is."""
    start = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
    what = next((text for magic, text in _NOT_TEXT.items() if start.startswith(magic)), None)
    if what:
        raise InputError(f"{path}: is {what}")


def _utf8(stream: Any) -> Any:
    """The stream as UTF-8: a UTF-16 file (what Excel saves as "Unicode Text") is transcoded whole."""
    start = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
    if start in (b"\xff\xfe", b"\xfe\xff"):
        return io.BytesIO(stream.read().decode("utf-16").encode("utf-8"))
    return stream


def _csv_pieces(path: Path, chunk_lines: int | None) -> Iterator[pd.DataFrame]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as raw_stream:
        _refuse_binary(path, raw_stream)
        stream = _utf8(raw_stream)
        if chunk_lines is None:
            data = stream.read()
            yield _parse_csv(path, data, _csv_header(path, data))
            return
        rest, eof = b"", False
        while not eof and _header_row(rest) is None:  # blank lines may precede the header row
            block = stream.read(_BLOCK)
            eof = not block
            rest += block
        header = _csv_header(path, rest)
        start, end = _header_row(rest) or (0, len(rest))
        prefix, header_row, rest = rest[:end], rest[start:end], rest[end:]
        first = True
        breaks = rest.count(b"\n")  # line breaks in `rest`, counted once per block read
        while True:
            blocks = [rest]  # joined once: `rest += block` would copy a large piece once per block
            while not eof and breaks < chunk_lines:
                block = stream.read(_BLOCK)
                eof = not block
                blocks.append(block)
                breaks += block.count(b"\n")
            rest = b"".join(blocks)
            cut = len(rest) if eof and breaks < chunk_lines else _cut(rest, chunk_lines, len(header))
            piece, rest = rest[:cut], rest[cut:]
            breaks = rest.count(b"\n")
            if piece or first:
                yield _parse_csv(path, (prefix if first else header_row) + piece, header)
            first = False
            if eof and not rest:
                return


def _header_row(data: bytes) -> tuple[int, int] | None:
    """Where the header row (the first non-blank line) starts and ends, line break included;
    None until its line break has been read."""
    found = _first_filled_line(data)
    if found is None or found[2] == found[3]:
        return None
    return found[1], found[3]


def _first_filled_line(data: bytes) -> tuple[int, int, int, int] | None:
    """The first line that is not blank (nor only commas): its number (1-based), where it starts,
    where its text ends and where the next line starts. Lines end in \n, \r\n or a lone \r (old
    Mac exports); the scan stops there, not at the end of a large piece."""
    number, start = 0, 0
    while start < len(data):
        found = _LINE_END.search(data, start)
        end, after = (found.start(), found.end()) if found else (len(data), len(data))
        number += 1
        line = data[start:end].strip(b"\xef\xbb\xbf \t\r,")
        if line and line != b"sep=":  # Excel's "sep=," line names the separator; it is not the header
            return number, start, end, after
        start = after
    return None


def _cut(data: bytes, lines: int, width: int) -> int:
    """Where to end a piece of about `lines` lines: at the end of a record (`_records`), so that a
    piece holds whole records and reads exactly as the whole file does."""
    raw = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(raw == 10)
    quotes = np.flatnonzero(raw == 34)
    quotes_per_line = np.diff(np.concatenate([[0], np.searchsorted(quotes, breaks), [len(quotes)]]))
    if not np.any(quotes_per_line % 2):
        return int(breaks[lines - 1]) + 1  # no line holds an odd number of quotes: every line is a record
    ends = [end for _, end, _ in _records(data, width)]
    before = [end for end in ends if end <= breaks[lines - 1] + 1]
    return before[-1] if before else ends[0]


# A quoted cell may hold line breaks (a note); more lines than this in one cell is a stray quote.
_MAX_RECORD_LINES = 1000


def _records(data: bytes, width: int) -> Iterator[tuple[int, int, bool]]:
    """The CSV records of `data` as (start, end, stray quote), end after the line break.

    Lines are `_line_spans`. A line is a record unless it opens a quoted cell it does not close (a
    quote inside a cell, 5'10", is a character, as pyarrow reads it). Such
    a cell ends on the next line with an odd number of quotes: the lines between are one record if
    they make one well-formed record of the header's `width` cells. Otherwise the quote is a stray
    that never closes: the line is a record on its own, read to its end, and the lines after it are
    not swallowed into its cell.
    """
    starts, ends = _line_spans(data)
    spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
    odd = [data.count(b'"', a, b) % 2 == 1 for a, b in spans]
    i = 0
    while i < len(spans):
        opens = odd[i] and _opens_quote(_decode(data[spans[i][0]:spans[i][1]]))
        if opens:
            close = next((j for j in range(i + 1, min(len(spans), i + _MAX_RECORD_LINES)) if odd[j]), None)
            if close is not None and _one_record(_decode(data[spans[i][0]:spans[close][1]]), width):
                yield spans[i][0], spans[close][1], False
                i = close + 1
                continue
        yield spans[i][0], spans[i][1], opens
        i += 1


def _one_record(text: str, width: int) -> bool:
    """Whether the text is one well-formed record of `width` cells: every quoted cell closes right
    before a comma or the line end (a quote that "closes" mid-cell, "Ann "Lee, belongs to another
    stray quote)."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return False
    return len(rows) == 1 and len(rows[0]) == width


def _opens_quote(line: str) -> bool:
    """Whether the line leaves a quoted cell open at its end."""
    try:
        for _ in csv.reader(io.StringIO(line.rstrip("\r\n"), newline=""), strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _parse_csv(path: Path, data: bytes, header: list[str]) -> pd.DataFrame:
    frame = _read_csv_fast(data, header)
    if frame is None:
        frame = _read_csv_tolerant(path, data, header)
    # A row of empty or whitespace cells (",,,," or ", ,\t,") is not a claim line, like a blank line.
    blank = pd.Series(False, index=frame.index)
    if len(frame.columns):
        maybe = frame.iloc[:, 0].str.strip() == ""  # only rows that start blank are checked cell by cell
        if maybe.any():
            blank[maybe] = (frame[maybe].apply(lambda cells: cells.str.strip()) == "").all(axis=1)
    if blank.any():
        frame = frame[~blank].reset_index(drop=True)
    return frame


# Columns whose header is blank or repeats an earlier one get an internal name, so the frame can
# hold them; `header_text` gives the original header back for the output.
_INTERNAL = "\x00column "
_LINE_END = re.compile(rb"\r\n|\r|\n")


def header_text(name: str) -> str:
    """The header as the export wrote it, for a column name of the raw frame."""
    return name.split("\x00", 2)[2] if name.startswith(_INTERNAL) else name


def canonical_spelling(header: str) -> str:
    """A header as the contract would name it: CLAIM_ID and "Claim Id" are claim_id."""
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


def _internal_names(path: Path, header: list[str]) -> list[str]:
    """Column names for the header cells as written (the output repeats them untouched); cells are
    compared without their surrounding spaces (" claim_id " is claim_id)."""
    seen: dict[str, int] = {}
    names = []
    for i, h in enumerate(header):
        key = h.strip()
        if key in seen:
            if canonical_spelling(key) in COLUMNS_BY_NAME:  # which one holds the claim's value is ambiguous: refuse
                raise InputError(f"{path}: column '{key}' appears twice in the header (columns {seen[key] + 1} "
                                 f"and {i + 1}); keep one")
            names.append(f"{_INTERNAL}{i + 1}\x00{h}")
        elif key == "":
            names.append(f"{_INTERNAL}{i + 1}\x00{h}")
        else:
            seen[key] = i
            names.append(h)
    return names


def _csv_header(path: Path, data: bytes) -> list[str]:
    """The header row: the first non-blank line, decoded on its own (a large file may not be UTF-8
    further down, and a multi-byte character must not be cut)."""
    found = _first_filled_line(data)
    if found is None:
        raise InputError(f"{path}: the file is empty; expected a header row")
    _, start, end, _ = found
    # No CSV header holds a NUL byte; UTF-16 without its byte-order mark has one in every character.
    if b"\x00" in data[start:end]:
        raise InputError(f"{path}: the header row holds NUL bytes, so the file is not CSV text (UTF-16 without a "
                         "byte-order mark, or a binary file?); save it as CSV (UTF-8) and scrub that")
    line = _decode(data[start:end]).rstrip("\r")
    if line.startswith("sep="):
        raise InputError(f"{path}: the file's first line names the separator {line[4:]!r}; "
                         "scrubber reads comma-separated files: save it as CSV (comma delimited)")
    row = next(csv.reader([line]), [])
    if len(row) == 1 and any(sep in line for sep in ("\t", ";", "|")):
        sep = next(s for s in ("\t", ";", "|") if s in line)
        raise InputError(f"{path}: the header row has no commas but has {sep!r}: the file is not comma-separated; "
                         "save it as CSV (comma delimited)")
    return _internal_names(path, row)


def _read_csv_fast(data: bytes, header: list[str]) -> pd.DataFrame | None:
    """pyarrow's reader, every cell as text; None when the file needs the tolerant reader.

    pyarrow refuses rows of the wrong width, invalid UTF-8 and some quoted line breaks, and reads
    others (two stray quotes in one column) as one row: rather than drop or merge anything, a file
    whose rows are not its lines goes through the slower reader that keeps every line.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    skip = _header_line(data)
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=skip),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False, quoted_strings_can_be_null=False, null_values=[],
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    if table.num_columns != len(header) or table.num_rows != _filled_lines(data, skip):
        return None
    frame = table.to_pandas()
    frame.columns = header
    return frame


def _line_ending(data: bytes) -> int:
    """The byte lines end in: \n (a \r before it is part of the ending), or \r in a file with no \n
    (old Mac exports). A lone \r in a file with \n line ends is a character of its cell."""
    return 10 if b"\n" in data else 13


def _line_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (after its line break, if it has one) of every line: the one rule for where a
    line ends, shared by the record finder and pyarrow's expected row count."""
    raw = np.frombuffer(data, dtype=np.uint8)
    after_breaks = np.flatnonzero(raw == _line_ending(data)) + 1
    starts = np.concatenate([[0], after_breaks])
    ends = np.concatenate([after_breaks, [len(raw)]])
    keep = ends > starts  # no line after a final line break
    return starts[keep], ends[keep]


def _filled_lines(data: bytes, skip: int) -> int:
    """Lines (`_line_spans`) after the first `skip`, not counting empty ones: the rows pyarrow should find."""
    raw = np.frombuffer(data, dtype=np.uint8)
    ending = _line_ending(data)
    starts, ends = _line_spans(data)
    length = ends - starts - (raw[ends - 1] == ending)  # without the line break
    empty = length == 0
    if ending == 10:  # "\r\n" alone: an empty line of a Windows file
        one = length == 1
        empty[one] = raw[starts[one]] == 13
    return int(np.count_nonzero(~empty[skip:]))


def _header_line(data: bytes) -> int:
    """Physical lines before and including the header (blank lines may precede it)."""
    found = _first_filled_line(data)
    return found[0] if found else len(data.splitlines())


def _read_csv_tolerant(path: Path, data: bytes, header: list[str]) -> pd.DataFrame:
    csv.field_size_limit(sys.maxsize)  # a 1 MB note in a cell is data, not an error
    rows, stray = [], []
    header_line = _first_filled_line(data)
    for start, end, quote in _records(data, len(header)):
        if header_line and start < header_line[1]:  # blank lines, Excel's "sep=," line
            continue
        text = _decode(data[start:end]).removesuffix("\n").removesuffix("\r")
        rows.append(_csv_record(text))
        stray.append(quote)
    kept = [(r, q) for r, q in zip(rows, stray, strict=True) if any(cell.strip() for cell in r)]
    body, quotes = [r for r, _ in kept[1:]], [q for _, q in kept[1:]]  # kept[0] is the header
    width = len(header)
    problems = {}
    for i, (r, q) in enumerate(zip(body, quotes, strict=True)):
        if q:
            problems[i] = "row: a quote is not closed, so the rest of the line was read into one cell"
        elif len(r) != width:
            # Even empty extra cells: a row shifted by an unquoted comma whose last column is empty
            # looks the same as an export that ends its data rows with a comma.
            problems[i] = f"row: has {len(r)} cells but the header has {width}, so its values may sit in the wrong columns"
            if len(r) > width:
                problems[i] += " (the cells past the last column are kept in it, comma-joined)"
    # Nothing is dropped: a short row is padded, a long row's surplus cells join its last cell.
    fixed = [r[: width - 1] + [",".join(r[width - 1 :])] if len(r) > width else r + [""] * (width - len(r)) for r in body]
    frame = pd.DataFrame(fixed, columns=header, dtype="string") if fixed else pd.DataFrame(columns=header, dtype="string")
    if problems:  # the line is kept; the problem is reported on it
        frame.attrs["row_problems"] = problems
    return frame


_LONE_CR = re.compile(r"\r(?!\n)")
_CR_STAND_IN = "\ue000"  # a private-use character: never in an export


def _csv_record(text: str) -> list[str]:
    """The cells of one record (`_records`). Python's csv reader ends a record at any \r, so a lone
    \r inside a cell is read as a stand-in and put back."""
    if "\r" not in text:
        return next(csv.reader(io.StringIO(text, newline="")), [])
    cells = next(csv.reader(io.StringIO(_LONE_CR.sub(_CR_STAND_IN, text), newline="")), [])
    return [c.replace(_CR_STAND_IN, "\r") for c in cells]


def _merge_keys(columns: list[str], known: set[str], record: dict[str, object]) -> None:
    """Add the record's new keys to the column order, each after the key before it in the record:
    a first record without curriculum_id still puts it where the others have it."""
    if known.issuperset(record):
        return
    previous = None
    for key in record:
        if key not in known:
            columns.insert(columns.index(previous) + 1 if previous is not None else 0, key)
            known.add(key)
        previous = key


def _read_jsonl(path: Path) -> pd.DataFrame:
    records: list[dict[str, object]] = []
    columns: list[str] = []
    known: set[str] = set()
    bad: list[int] = []
    with path.open("rb") as handle:
        for number, raw_line in enumerate(handle, start=1):
            line = _decode(raw_line).strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
                continue
            if not isinstance(record, dict):
                bad.append(number)
                continue
            # As text now: a frame built from the values would make an integer key that some
            # lines lack a float (a 19-digit claim id would lose its last digits).
            records.append({key: cell_text(value) for key, value in record.items()})
            _merge_keys(columns, known, record)
    if bad:
        rows = ", ".join(str(b) for b in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        what = "is not a JSON object" if len(bad) == 1 else "are not JSON objects"
        raise InputError(f"{path}: line{'s' if len(bad) > 1 else ''} {rows} {what}; expected one object per line")
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype(object).map(cell_text)


# canonical column -> the raw column holding it (several, joined, for a list field mapped to several)
Columns = dict[str, str | tuple[str, ...]]


def _as_in_file(header: str, named: dict[str, Any]) -> str:
    """A mapped header as the file spells it: "qty" maps "Qty" when no other header differs from it only in case."""
    if header.strip() in named:
        return header
    same = [key for key in named if key.casefold() == header.strip().casefold()]
    return same[0] if len(same) == 1 else header


def apply_mapping(raw: pd.DataFrame, mapping: Mapping, path: Path) -> Columns:
    """Return canonical name -> raw column(s); check the mapped headers and required columns exist."""
    if raw.empty and not len(raw.columns):  # an empty JSON Lines file: no lines and no keys, nothing to map
        return {}
    # Headers are compared without their surrounding spaces; the columns keep them (see _internal_names).
    named = {str(c).strip(): c for c in reversed(raw.columns) if not str(c).startswith(_INTERNAL)}
    mapping = {canon: [_as_in_file(h, named) for h in headers] if isinstance(headers, list) else _as_in_file(headers, named)
               for canon, headers in mapping.items()}
    listed = [h for headers in mapping.values() for h in mapped_headers(headers)]
    missing_headers = [h for h in listed if h.strip() not in named]
    if missing_headers:
        raise InputError(f"{path}: the mapping names header(s) not in the file: {', '.join(missing_headers)}")
    repeated = {header_text(c).strip() for c in raw.columns if str(c).startswith(_INTERNAL)}
    for canon, headers in mapping.items():
        for header in mapped_headers(headers):
            if header.strip() in repeated:  # which one holds the claim's value is ambiguous, as for a contract header
                raise InputError(f"{path}: column '{header}' (mapped to {canon}) appears more than once in the header; keep one")
    by_canonical: Columns = {
        canon: tuple(named[h.strip()] for h in headers) if isinstance(headers, list) else named[headers.strip()]
        for canon, headers in mapping.items()
    }
    mapped = {h.strip() for h in listed}
    exact = set()
    for key, column in named.items():
        if key in COLUMNS_BY_NAME and key not in by_canonical and key not in mapped:
            by_canonical[key] = column
            exact.add(key)
    # Then headers spelled another way (CLAIM_ID from a database unload, "Claim Id" from a report).
    # Beside the exact header ("units" and "UNITS") either could hold the value: refused, as below.
    loose: dict[str, list[str]] = {}
    for key in dict.fromkeys(str(c).strip() for c in raw.columns if not str(c).startswith(_INTERNAL)):  # header order
        canon = canonical_spelling(key)
        if canon in COLUMNS_BY_NAME and (canon not in by_canonical or canon in exact) and key not in mapped | exact:
            loose.setdefault(canon, [canon] if canon in exact else []).append(key)
    for canon, keys in loose.items():
        if len(keys) > 1:
            raise InputError(f"{path}: columns {' and '.join(repr(k) for k in keys)} could each be {canon}; "
                             f"map one with --mapping FILE ({canon}: \"Export Header\")")
        by_canonical[canon] = named[keys[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in by_canonical]
    if missing:
        raise InputError(
            f"{path}: missing required column(s): {', '.join(missing)}; "
            "rename them in the export or map them with --mapping FILE (canonical_name: \"Export Header\")"
        )
    return by_canonical


# -- typing ---------------------------------------------------------------------------------------
# Each column is parsed once per distinct cell and the result spread back to its lines: an export
# repeats its dates, codes and amounts on thousands of lines, and even its claim ids repeat.
# Thousands separators only in groups of three ("1,000", "1 000"): "12,50" is a decimal comma and
# "1.234,50" a European amount, which cannot be read safely, so they are reported, not guessed.
_DIGITS = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]+)"
_INT_TEXT = re.compile(rf"[+-]?{_DIGITS}(?:\.0*)?")  # "2.0" is a whole number
_NUMBER_TEXT = re.compile(rf"[+-]?(?:\$ ?)?[+-]?(?:{_DIGITS}(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_INT_DIGITS = 15  # whole numbers up to 15 digits are exact in float64 and int64
_SIGN_AND_POINT_ZEROS = re.compile(r"[+-]|\.0*$")
_DATE_TEXT = tuple(re.compile(p) for p in _DATE_PATTERNS)

_EXCEL_TEXT = re.compile(r'="(.*)"')  # ="02": a spreadsheet formula that keeps a leading zero
# Words that stand for no value. NULL is how database exports write an empty cell, in any column.
# In a code or text column (prior_auth_number, referring_npi, session_id, modifiers) the words a
# person types for "none" are no value either: taken as one, "N/A" would pass for an authorization
# number. In a number or date column they are reported as unreadable, like any other word.
_NULL_WORD = "null"
_PLACEHOLDER_WORDS = frozenset({_NULL_WORD, "n/a", "na", "none", "nan", "#n/a"})
_PAYER_TYPE_GAPS = re.compile(r"[\s\-]+", re.ASCII)  # "Medicare Advantage", "medicare-advantage"

# Code fields a spreadsheet or pandas may write as a float (an NPI column with a gap is written
# 1234567893.0, POS 11 as 11.0): a whole number's ".0" is dropped, as when a typed file is read.
WHOLE_NUMBER_CODE_FIELDS = frozenset({"rendering_npi", "billing_npi", "referring_npi", "pos", "cpt"})
_WHOLE_FLOAT = re.compile(r"([0-9]+)\.0+")  # modifiers too, item by item (59.0)
# Code fields the reader upper-cases (a lower-case "gp" in an export is modifier GP).
# payer_id too: exports and payers.yaml write one payer as Cigna, CIGNA or cigna.
UPPER_CASE_FIELDS = frozenset({"cpt", "modifiers", "rendering_taxonomy", "referring_taxonomy", "payer_id"})  # 225x00000x is 225X00000X
# Fields holding ICD-10-CM codes: stored without the dot, as CMS's code list writes them.
DIAGNOSIS_FIELDS = frozenset({"dx_codes", "dx_codes_judged", "dx_primary", "dx_malformed", "dx_unknown", "dx_not_billable"})


def normalise_diagnosis(code: str) -> str:
    """E11.9 -> E119, I10. -> I10; ICD-9 250.00 or a stray dot stays as written, and is malformed."""
    code = code.strip().upper()
    if len(code) > 3 and code[3] == "." and code.count(".") == 1 and code[0].isalpha():
        return code.replace(".", "")
    return code


# `;` and `,` (the contract's), and the spaces, `|` and `:` other exports put between codes: no
# modifier or ICD-10-CM code holds one. Modifiers are also joined with `-` (GP-59); in a diagnosis
# a `-` is a typo for the dot (E11-9), reported as malformed, not split into two codes.
_LIST_SEPARATOR = re.compile(r"[;,|:\s]+")
_MODIFIER_SEPARATOR = re.compile(r"[;,|:\s-]+")


def _split_list(value: str, diagnosis: bool) -> str | None:
    """Codes separated by `;`, `,`, spaces, `|` or `:` (modifiers also `-`), upper-cased,
    de-duplicated in order, joined with `;`."""
    items: list[str] = []
    for item in (_LIST_SEPARATOR if diagnosis else _MODIFIER_SEPARATOR).split(value):
        if item.lower() in _PLACEHOLDER_WORDS:  # "E11.9|N/A": the N/A is no code
            continue
        code = normalise_diagnosis(item) if diagnosis else item.strip().upper()
        if not diagnosis and (whole := _WHOLE_FLOAT.fullmatch(code)):
            code = whole.group(1)
        if code and code not in items:
            items.append(code)
    return ";".join(items) if items else None


def _value_text(cell: Any, no_value: frozenset[str] = frozenset()) -> str | None:
    """A cell's text as a value: stripped, a spreadsheet's text marker (="02", '02) removed; None
    for a missing, blank or NULL cell, or one of the `no_value` words (any case). Not `cell_text`,
    which writes a typed cell as the text a CSV would hold."""
    if cell is None:
        return None
    text = (cell if type(cell) is str else str(cell)).strip()
    if text.startswith('="') and (excel := _EXCEL_TEXT.fullmatch(text)):
        text = excel.group(1).strip()
    elif text.startswith("'"):  # '02: the apostrophe a spreadsheet user types to keep a value as text
        text = text[1:].strip()
    lower = text.lower()
    return None if lower in ("", _NULL_WORD) or lower in no_value else text


def _whole_number(text: str) -> int | None:
    if not _INT_TEXT.fullmatch(text):
        return None
    digits = text.replace(",", "").replace(" ", "")
    if len(_SIGN_AND_POINT_ZEROS.sub("", digits)) > _MAX_INT_DIGITS:
        return None
    return round(float(digits))


def _minutes(text: str) -> int | None:
    value = _whole_number(text)
    return value if value is None or value >= 0 else None


def _number(text: str) -> float | None:
    if not _NUMBER_TEXT.fullmatch(text):
        return None
    try:
        value = float(text.replace("$", "").replace(",", "").replace(" ", ""))
    except ValueError:  # two signs: "+$-5"
        return None
    return value if math.isfinite(value) else None  # 1e999 is no number either


_MS_PER_DAY = 86_400_000


def _day(text: str) -> str | None:
    """The date as YYYY-MM-DD, read by the first pattern the text matches; None if none does or the
    date does not exist (2026-02-30). Thirteen digits that fall on a UTC midnight are epoch
    milliseconds, as pandas' to_json writes dates by default (1767571200000 is 2026-01-05)."""
    if len(text) == 13 and text.isascii() and text.isdigit():
        days, rest = divmod(int(text), _MS_PER_DAY)
        return (date(1970, 1, 1) + timedelta(days=days)).isoformat() if rest == 0 else None
    for pattern in _DATE_TEXT:
        if found := pattern.match(text):
            year = found["y"] if len(found["y"]) == 4 else ("20" if found["y"] < "69" else "19") + found["y"]
            try:
                return date(int(year), int(found["m"]), int(found["d"])).isoformat()
            except ValueError:
                return None
    return None


def _payer_type(text: str) -> str | None:
    value = _PAYER_TYPE_GAPS.sub("_", text.lower())
    return value if value in PAYER_TYPES else None


def _pos(text: str) -> str:
    return "0" + text if len(text) == 1 and text in "0123456789" else text  # spreadsheets drop POS 02's zero


def _value_parser(name: str, ftype: FieldType) -> tuple[Callable[[str], Any] | None, str | None]:
    """How a column's text becomes its value (None: unreadable; no parser: the text as it is),
    and what an unreadable value is not."""
    if ftype is FieldType.INT and name == "minutes":  # documented time: -5 is no number of minutes
        return _minutes, "is not a whole number of minutes (0 or more)"
    if ftype is FieldType.INT:
        return _whole_number, "is not a whole number"
    if ftype is FieldType.NUMBER:
        return _number, "is not a number"
    if ftype is FieldType.DATE:
        return _day, "is not a date (YYYY-MM-DD or MM/DD/YYYY)"
    if ftype is FieldType.LIST:
        return functools.partial(_split_list, diagnosis=name == "dx_codes"), None
    if name == "payer_type":
        return _payer_type, f"is not one of {', '.join(PAYER_TYPES)}"
    if name in UPPER_CASE_FIELDS:
        return str.upper, None
    return (_pos if name == "pos" else None), None


def _parse_cells(name: str, ftype: FieldType, cells: list[Any]) -> tuple[list[Any], list[str | None]]:
    """Each cell's value (None when missing or unreadable) and, when it cannot be read, `name: why`.
    The value is never echoed: a wrong mapping or a shifted row puts other columns' data in a column
    (a member id, an SSN or a birth date in a date column), and no shape tells a typo from those;
    the cell is on the annotated line."""
    parse, reason = _value_parser(name, ftype)
    placeholders = _PLACEHOLDER_WORDS if ftype in (FieldType.TEXT, FieldType.LIST) else frozenset()
    whole_numbers = name in WHOLE_NUMBER_CODE_FIELDS
    unreadable = None if reason is None or name in PHI_COLUMNS else f"{name}: a value (not shown) {reason}"
    values: list[Any] = []
    problems: list[str | None] = []
    for cell in cells:
        text = _value_text(cell, placeholders)
        value = problem = None
        if text is None:
            pass
        elif len(text) > MAX_CELL:
            problem = f"{name}: value is {len(text)} characters long; at most {MAX_CELL}"
        else:
            if whole_numbers and (whole := _WHOLE_FLOAT.fullmatch(text)):
                text = whole.group(1)
            value = parse(text) if parse else text
            if value is None:
                problem = unreadable
        values.append(value)
        problems.append(problem)
    return values, problems


def _typed_array(ftype: FieldType, values: list[Any]) -> Any:
    """Parsed values (None for missing) in the column type's array."""
    if ftype is FieldType.DATE:
        return np.array(["NaT" if v is None else v for v in values], dtype="datetime64[s]")
    if ftype in (FieldType.INT, FieldType.NUMBER):
        return pd.array(values, dtype="Int64" if ftype is FieldType.INT else "Float64")
    return string_array(np.array(values, dtype=object))


def _distinct(cells: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Each cell's code (-1 for a missing cell) and the distinct cells, as Python values."""
    codes, uniques = pd.factorize(cells, use_na_sentinel=True)
    return codes, np.asarray(uniques, dtype=object).tolist()  # far faster than iterating an Arrow array


def _parse_column(name: str, ftype: FieldType, cells: pd.Series) -> tuple[pd.Series, pd.Series | None]:
    """One canonical column parsed to its type, and its problems (None when every cell reads)."""
    codes, uniques = _distinct(cells)
    values, problems = _parse_cells(name, ftype, uniques)
    # Code -1 (a missing cell) takes the None appended last.
    series = pd.Series(_typed_array(ftype, [*values, None]).take(codes), index=cells.index)
    if all(p is None for p in problems):
        return series, None
    return series, pd.Series(string_array(np.array([*problems, None], dtype=object)).take(codes), index=cells.index)


def _joined(raw: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    """A list field's cells from several columns (Modifier 1..4), joined with `;` in column order;
    empty and placeholder cells add nothing."""
    cells = []
    for column in columns:
        codes, uniques = _distinct(raw[column])
        texts = [_value_text(cell, _PLACEHOLDER_WORDS) or "" for cell in uniques] + [""]
        cells.append(pd.Series(string_array(np.array(texts, dtype=object)).take(codes), index=raw.index))
    joined = cells[0].str.cat(cells[1:], sep=";")
    return joined.mask(joined.str.strip(";") == "")


def type_columns(raw: pd.DataFrame, columns: Columns, place: tuple[str, int] = ("the export", 1)) -> pd.DataFrame:
    """Parse the canonical columns; add `unreadable_values`, `unreadable_columns` and `missing_required`.
    `place`: the file the lines are from and the number of the first one among the file's lines
    (from 1), which a damaged row's finding names: it has no claim id to be found by."""
    typed: dict[str, pd.Series] = {}
    problems: list[pd.Series] = []
    problem_columns: list[pd.Series] = []  # each problem's column name on its rows: the columns not read
    for name, spec in COLUMNS_BY_NAME.items():
        if name not in columns:  # missing on every line
            typed[name] = pd.Series(_typed_array(spec.type, [None]).take(np.zeros(len(raw), dtype=np.intp)), index=raw.index)
            continue
        source = columns[name]
        cells = _joined(raw, source) if isinstance(source, tuple) else raw[source]
        typed[name], found = _parse_column(name, spec.type, cells)
        if found is not None:
            problems.append(found)
            problem_columns.append(pd.Series(name, index=raw.index, dtype="string").where(found.notna()))
    frame = pd.DataFrame(typed, index=raw.index)
    frame["unreadable_columns"] = _combine(problem_columns, raw.index, sep=";")
    file, first = place
    row_problems = {**_shifted_rows(problems, file), **_header_rows(raw, columns), **raw.attrs.get("row_problems", {})}
    damaged = pd.Series(False, index=raw.index)
    if row_problems:
        # A damaged row's cells may sit in the wrong columns (a patient's name where the claim id or
        # the procedure code should be), so no rule reads them and no message or report shows them:
        # the row's only finding is its damage, naming the columns that failed.
        damaged.iloc[list(row_problems)] = True
        for name in typed:
            frame[name] = frame[name].mask(damaged)
        failed = [names.where(damaged) for names in problem_columns]
        problems = [p.mask(damaged) for p in problems]
        row_problem = pd.Series(pd.NA, index=raw.index, dtype="string")
        row_problem.iloc[list(row_problems)] = [  # "row: has 26 cells" -> "row 7 of export.csv: has 26 cells"
            f"row {first + i} of {file}{text.removeprefix('row')}" for i, text in row_problems.items()]
        columns = _combine(failed, raw.index, sep=", ")
        problems.insert(0, row_problem.where(columns.isna(), row_problem + "; unreadable: " + columns))
    frame["unreadable_values"] = _combine(problems, raw.index)
    unreadable = frame["unreadable_values"]
    any_unreadable = bool(unreadable.notna().any())
    missing = []
    for column in REQUIRED_COLUMNS:
        empty = frame[column].isna()
        if not empty.any():
            continue
        if any_unreadable:  # a value that could not be read is reported as such, not as missing
            empty &= ~mentions(unreadable, column) & ~damaged
        missing.append(pd.Series(column, index=raw.index, dtype="string").where(empty))
    frame["missing_required"] = _combine(missing, raw.index, sep=", ")
    frame[DAMAGED_ROW] = damaged.to_numpy()
    return frame


DAMAGED_ROW = "damaged_row"  # typed column: the row's values are not read (its only finding is its damage)
_SHIFTED_ROW = "row: values in several columns cannot be read (columns mapped to the wrong fields?)"
_SHIFTED_CSV_ROW = ("row: values in several columns cannot be read, as if its cells had shifted "
                    "(a comma in an unquoted cell?)")


def _header_rows(raw: pd.DataFrame, columns: Columns) -> dict[int, str]:
    """Rows (by position) that repeat the header, as when exports are joined one after another:
    the claim id cell reads as its own header, and so do at least half the row's cells."""
    claim = columns.get("claim_id")
    if not isinstance(claim, str):
        return {}
    rows = np.flatnonzero(raw[claim].str.strip().eq(header_text(claim).strip()).fillna(False).to_numpy(dtype=bool))
    if not len(rows):
        return {}
    cells = raw.iloc[rows]
    same = np.sum([cells[c].str.strip().eq(header_text(c).strip()).fillna(False).to_numpy(dtype=bool)
                   for c in raw.columns], axis=0)
    return dict.fromkeys(rows[same * 2 >= len(raw.columns)].tolist(), HEADER_ROW)


HEADER_ROW = "row: repeats the header row (exports joined one after another?)"


def _shifted_rows(problems: list[pd.Series], file: str) -> dict[int, str]:
    """Rows (by position) with unreadable values in two or more columns. One bad value is a typo
    (units `two`); several in one row are most often cells shifted by an unquoted comma, and then
    the values are the neighbouring columns' (a birth date in payer_type): never echoed."""
    if len(problems) < 2:
        return {}
    count = np.sum([p.notna().to_numpy() for p in problems], axis=0)
    text = _SHIFTED_CSV_ROW if file.lower().endswith((".csv", ".csv.gz")) else _SHIFTED_ROW  # only a CSV row shifts
    return dict.fromkeys(np.flatnonzero(count >= 2).tolist(), text)


def mentions(problems: pd.Series, column: str) -> pd.Series:
    """Whether a line's problems already name `column` (as `column: ...` or in a damaged row's list)."""
    pattern = f"(?:^|; ){column}:|unreadable: (?:[a-z_]+, )*{column}(?:,|$)"
    return problems.str.contains(pattern, regex=True).fillna(False).astype(bool)


def _combine(parts: list[pd.Series], index: pd.Index, sep: str = "; ") -> pd.Series:
    """Join the non-missing texts of each row across `parts`; <NA> where a row has none."""
    # Joined on the rows that have a text only (problems are rare), typed once at the end.
    out = np.full(len(index), None, dtype=object)
    for part in parts:
        part = part.astype("string")
        has = part.notna().to_numpy()
        if has.any():
            texts = part[has].to_numpy(dtype=object)
            out[has] = [t if b is None else b + sep + t for b, t in zip(out[has], texts, strict=True)]
    return pd.Series(string_array(out), index=index)


def string_array(values: np.ndarray) -> pd.arrays.ArrowStringArray:
    """Text values (str, or None / NA for missing) on the string dtype: Arrow converts an object
    array at once, where pandas checks it element by element."""
    import pyarrow as pa

    return pd.arrays.ArrowStringArray(pa.array(values, pa.large_string(), from_pandas=True))


def read_batch(paths: list[Path], mapping: Mapping) -> ClaimBatch:
    """Read every input file, in order, into one batch."""
    pieces = list(iter_pieces(paths, mapping, None))
    return batch_of([p.raw for p in pieces], [p.typed for p in pieces], sources_of(pieces))


@dataclass
class Piece:
    """Some lines of one input file (the whole file unless it is read in pieces)."""

    file_index: int  # which input file, in command-line order
    file: str
    first_row: int  # the number of its first line among the file's lines, from 1
    raw: pd.DataFrame
    columns: Columns  # canonical name -> raw column(s) (apply_mapping)

    @functools.cached_property
    def typed(self) -> pd.DataFrame:
        """The typed lines, parsed when first asked for (a streamed run types its pieces in workers)."""
        return type_columns(self.raw, self.columns, (self.file, self.first_row))


def iter_pieces(paths: list[Path], mapping: Mapping, chunk_lines: int | None) -> Iterator[Piece]:
    """Every input file in order, in typed pieces of about `chunk_lines` lines (see iter_raw)."""
    for index, path in enumerate(paths):
        first_row = 1
        for raw in iter_raw(path, chunk_lines):
            yield Piece(index, path.name, first_row, raw, apply_mapping(raw, mapping, path))
            first_row += len(raw)


def sources_of(pieces: list[Piece]) -> list[tuple[str, int]]:
    """(file name, lines) of each input file, in order."""
    return count_sources([(p.file_index, p.file, len(p.raw)) for p in pieces])


def count_sources(counts: list[tuple[int, str, int]]) -> list[tuple[str, int]]:
    """(file name, lines) of each input file, in order, from (file index, name, lines) of pieces."""
    lines: dict[int, tuple[str, int]] = {}
    for index, name, n in counts:
        lines[index] = (name, lines.get(index, (name, 0))[1] + n)
    return [lines[i] for i in sorted(lines)]


def estimate_lines(paths: list[Path]) -> int:
    """A rough line count from file sizes (about 150 bytes a CSV line; compressed formats ~5x),
    used only to size the spill buckets of a streamed run, never for results."""
    def size(path: Path) -> int:
        files = [f for f in path.rglob("*") if f.is_file()] if path.is_dir() else [path]
        factor = 1 if path.name.lower().endswith(".csv") else 5
        return factor * sum(f.stat().st_size for f in files)
    return sum(size(p) for p in paths) // 150


def batch_of(raws: list[pd.DataFrame], typed: list[pd.DataFrame], sources: list[tuple[str, int]]) -> ClaimBatch:
    """One batch from the raw and typed frames of its files (or of parts of them), in input order."""
    raw_all = pd.concat(raws, ignore_index=True, sort=False) if len(raws) > 1 else raws[0].reset_index(drop=True)
    typed_all = pd.concat(typed, ignore_index=True) if len(typed) > 1 else typed[0].reset_index(drop=True)
    return ClaimBatch(raw_all, typed_all, sources)

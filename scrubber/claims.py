"""Read claim exports: raw lines for the output, typed canonical columns for the rules.

Every line read comes out exactly once and in order: the raw frame keeps each input cell as
text, untouched, for the annotated file; the typed frame holds the canonical columns parsed to
their types. A value that cannot be parsed does not stop the run: it becomes missing in the
typed frame and is described in `unreadable_values`, which a rule reports as `invalid_input`.
Errors name files, columns and rows, never a cell value of a PHI column.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scrubber import yamlfile
from scrubber.errors import InputError
from scrubber.fields import COLUMNS_BY_NAME, PAYER_TYPES, PHI_COLUMNS, REQUIRED_COLUMNS, FieldType

MAX_CELL = 1000  # longer values in a contract column are unreadable (the engine compares 16-bit lengths, P14)
_INT = re.compile(r"[+-]?\d+(?:\.0*)?")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?)?")
_US = re.compile(r"\d{1,2}/\d{1,2}/\d{4}")


@dataclass
class ClaimBatch:
    """The lines of one run: raw cells for output, typed canonical columns for the rules."""

    raw: pd.DataFrame  # every input column as read, original headers, in input order
    typed: pd.DataFrame  # canonical columns (contract names), parsed; plus input problem fields
    sources: list[tuple[str, int]]  # (file name, line count) in order


def load_mapping(path: Path | None) -> dict[str, str]:
    """Read a column mapping file: `canonical_name: "Export Header"`."""
    if path is None:
        return {}
    data, problems = yamlfile.load(path)
    if problems:
        raise InputError(str(problems[0]))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(f"{path}: expected lines of the form canonical_name: \"Export Header\"")
    unknown = [k for k in data if k not in COLUMNS_BY_NAME]
    if unknown:
        from scrubber.loader import did_you_mean

        line, col = yamlfile.key_pos(data, unknown[0])
        raise InputError(
            f"{path}:{line}:{col}: unknown canonical column '{unknown[0]}'"
            f"{did_you_mean(unknown[0], COLUMNS_BY_NAME)}; expected one of: {', '.join(COLUMNS_BY_NAME)}"
        )
    return {str(k): str(v) for k, v in data.items()}


def read_raw(path: Path) -> pd.DataFrame:
    """Read one export with every cell as text (None for a missing cell in typed formats)."""
    name = path.name.lower()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            frame = table.to_pandas(types_mapper=None)
            return frame.astype(object).where(frame.notna(), None)
        if name.endswith(".jsonl") or name.endswith(".ndjson"):
            return _read_jsonl(path)
        if name.endswith(".csv") or name.endswith(".csv.gz"):
            return _read_csv(path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot be read ({exc.__class__.__name__})") from None
    raise InputError(f"{path}: unknown file type; expected .csv, .csv.gz, .parquet or .jsonl")


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # Practice-management systems on Windows export cp1252; every byte string decodes there
        # except five undefined bytes, for which latin-1 is the lossless fallback.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _read_csv(path: Path) -> pd.DataFrame:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            raise InputError(f"{path}: not a valid gzip file") from None
    text = _decode(data)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise InputError(f"{path}: the file is empty; expected a header row")
    header = [h.strip() for h in rows[0]]
    seen: dict[str, int] = {}
    for i, h in enumerate(header):
        if h in seen:
            raise InputError(f"{path}: column '{h}' appears twice in the header (columns {seen[h] + 1} and {i + 1})")
        seen[h] = i
    width = len(header)
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]  # blank lines are not claim lines
    ragged = [i for i, r in enumerate(body) if len(r) != width]
    fixed = [r[:width] + [""] * (width - len(r)) for r in body]
    frame = pd.DataFrame(fixed, columns=header, dtype=object) if fixed else pd.DataFrame(columns=header, dtype=object)
    if ragged:
        # A row with too many or too few cells is kept; the problem is reported on the line.
        frame.attrs["ragged"] = {i: len(body[i]) for i in ragged}
        frame.attrs["width"] = width
    return frame


def _read_jsonl(path: Path) -> pd.DataFrame:
    records: list[dict[str, object]] = []
    columns: dict[str, None] = {}
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
            records.append(record)
            columns.update(dict.fromkeys(record))
    if bad:
        rows = ", ".join(str(b) for b in bad[:5])
        raise InputError(f"{path}: lines {rows} are not JSON objects; expected one object per line")
    frame = pd.DataFrame.from_records(records, columns=list(columns))
    return frame.astype(object).where(frame.notna(), None)


def apply_mapping(raw: pd.DataFrame, mapping: dict[str, str], path: Path) -> dict[str, str]:
    """Return canonical name -> raw column; check the mapped headers and required columns exist."""
    missing_headers = [h for h in mapping.values() if h not in raw.columns]
    if missing_headers:
        raise InputError(f"{path}: the mapping names header(s) not in the file: {', '.join(missing_headers)}")
    by_canonical = {canon: header for canon, header in mapping.items()}
    mapped_headers = set(mapping.values())
    for column in raw.columns:
        if column in COLUMNS_BY_NAME and column not in by_canonical and column not in mapped_headers:
            by_canonical[column] = column
    missing = [c for c in REQUIRED_COLUMNS if c not in by_canonical]
    if missing:
        raise InputError(
            f"{path}: missing required column(s): {', '.join(missing)}; "
            "rename them in the export or map them with --mapping FILE (canonical_name: \"Export Header\")"
        )
    return by_canonical


# -- typing ---------------------------------------------------------------------------------------
def _cell_text(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _text(raw: pd.Series) -> pd.Series:
    """Cells as stripped text, None for missing (an object series: pandas keeps None there)."""
    return pd.Series([_cell_text(v) for v in raw], index=raw.index, dtype=object)


def _keep(values: pd.Series, mask: pd.Series) -> pd.Series:
    """values where mask, else None (without pandas turning None into NaN)."""
    return pd.Series([v if m else None for v, m in zip(values, mask, strict=True)], index=values.index, dtype=object)


def _parse_int(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    cleaned = values.map(lambda v: None if v is None else v.replace(",", "").replace(" ", ""))
    ok = cleaned.map(lambda v: v is None or bool(_INT.fullmatch(v)))
    parsed = _keep(cleaned, ok).map(lambda v: None if v is None else int(float(v)) if "." in v else int(v))
    problem = _keep(values, ~ok).map(lambda v: None if v is None else f"'{v}' is not a whole number")
    return parsed.astype("Int64"), problem


def _parse_number(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    cleaned = values.map(lambda v: None if v is None else v.replace(",", "").replace(" ", "").replace("$", ""))
    parsed = pd.to_numeric(cleaned, errors="coerce")
    bad = (cleaned.notna() & (parsed.isna() | ~np.isfinite(parsed.astype(float).fillna(0)))).astype(bool)
    problem = _keep(values, bad).map(lambda v: None if v is None else f"'{v}' is not a number")
    return parsed.where(~bad).astype("Float64"), problem


def _parse_date(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    def one(v: str | None) -> pd.Timestamp | None:
        if v is None:
            return None
        try:
            if _ISO.fullmatch(v):
                return pd.Timestamp(v[:10])
            if _US.fullmatch(v):
                return pd.Timestamp(pd.to_datetime(v, format="%m/%d/%Y"))
        except (ValueError, OverflowError):
            return None
        return None

    parsed = values.map(one)
    bad = values.notna() & parsed.isna()
    problem = _keep(values, bad).map(lambda v: None if v is None else f"'{v}' is not a date (YYYY-MM-DD or MM/DD/YYYY)")
    return pd.to_datetime(_keep(parsed, ~bad)).astype("datetime64[s]"), problem


def _split_list(value: str | None, diagnosis: bool) -> str | None:
    if value is None:
        return None
    items: list[str] = []
    for item in re.split(r"[;,]", value):
        code = item.strip().upper()
        if diagnosis and len(code) > 4 and code[3] == "." and code.count(".") == 1:
            code = code.replace(".", "")  # E11.9 -> E119; a dot anywhere else stays and is malformed
        if code and code not in items:
            items.append(code)
    return ";".join(items) if items else None


def type_columns(raw: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Parse the canonical columns; add `unreadable_values` and `missing_required`."""
    typed: dict[str, pd.Series] = {}
    problems: list[pd.Series] = []
    for name, spec in COLUMNS_BY_NAME.items():
        if name not in columns:
            dtype = {FieldType.INT: "Int64", FieldType.NUMBER: "Float64", FieldType.DATE: "datetime64[s]"}.get(spec.type, "string")
            typed[name] = pd.Series(pd.NA if dtype != "datetime64[s]" else pd.NaT, index=raw.index, dtype=dtype)
            continue
        values = _text(raw[columns[name]])
        too_long = values.map(lambda v: v is not None and len(v) > MAX_CELL).astype(bool)
        if too_long.any():
            problems.append(_keep(values, too_long).map(
                lambda v, n=name: None if v is None else f"{n}: value is {len(v)} characters long; at most {MAX_CELL}"))
            values = _keep(values, ~too_long)
        problem = None
        if spec.type is FieldType.INT:
            series, problem = _parse_int(values)
        elif spec.type is FieldType.NUMBER:
            series, problem = _parse_number(values)
        elif spec.type is FieldType.DATE:
            series, problem = _parse_date(values)
        elif spec.type is FieldType.LIST:
            series = values.map(lambda v, d=(name == "dx_codes"): _split_list(v, d)).astype("string")
        elif name == "payer_type":
            norm = values.map(lambda v: None if v is None else re.sub(r"[\s\-]+", "_", v.lower()))
            bad = norm.notna() & ~norm.isin(PAYER_TYPES)
            problem = _keep(values, bad).map(
                lambda v: None if v is None else f"'{v}' is not one of {', '.join(PAYER_TYPES)}")
            series = _keep(norm, ~bad).astype("string")
        elif name == "cpt":
            series = values.map(lambda v: None if v is None else v.upper()).astype("string")
        elif name == "pos":
            # Spreadsheets drop the leading zero of POS 02: a single digit is padded back.
            series = values.map(lambda v: None if v is None else v.zfill(2) if v.isdigit() and len(v) == 1 else v).astype("string")
        else:
            series = values.astype("string")
        if problem is not None and name not in PHI_COLUMNS:
            problems.append(problem.map(lambda p, n=name: None if p is None else f"{n}: {p}"))
        typed[name] = series
    frame = pd.DataFrame(typed, index=raw.index)
    ragged = raw.attrs.get("ragged", {})
    if ragged:
        width = raw.attrs["width"]
        row_problem = pd.Series(None, index=raw.index, dtype=object)
        for pos, n in ragged.items():
            row_problem.iloc[pos] = f"row: has {n} cells but the header has {width}"
        problems.insert(0, row_problem)
    frame["unreadable_values"] = _combine(problems, raw.index)
    missing = [frame[c].isna() & ~_mentions(frame["unreadable_values"], c) for c in REQUIRED_COLUMNS]
    labels = [pd.Series(np.where(m, c, None), index=raw.index) for m, c in zip(missing, REQUIRED_COLUMNS, strict=True)]
    frame["missing_required"] = _combine(labels, raw.index, sep=", ")
    return frame


def _mentions(problems: pd.Series, column: str) -> pd.Series:
    return problems.fillna("").str.contains(f"(?:^|; ){column}:", regex=True).astype(bool)


def _combine(parts: list[pd.Series], index: pd.Index, sep: str = "; ") -> pd.Series:
    if not parts:
        return pd.Series(pd.NA, index=index, dtype="string")
    stacked = pd.concat(parts, axis=1)
    joined = stacked.apply(lambda row: sep.join(v for v in row if isinstance(v, str)) or None, axis=1)
    return joined.astype("string")


def read_batch(paths: list[Path], mapping: dict[str, str]) -> ClaimBatch:
    """Read every input file, in order, into one batch."""
    raws: list[pd.DataFrame] = []
    typed: list[pd.DataFrame] = []
    sources: list[tuple[str, int]] = []
    for path in paths:
        raw = read_raw(path)
        columns = apply_mapping(raw, mapping, path)
        typed.append(type_columns(raw, columns))
        raws.append(raw)
        sources.append((path.name, len(raw)))
    raw_all = pd.concat(raws, ignore_index=True, sort=False) if len(raws) > 1 else raws[0].reset_index(drop=True)
    typed_all = pd.concat(typed, ignore_index=True) if len(typed) > 1 else typed[0].reset_index(drop=True)
    return ClaimBatch(raw_all.astype(object).where(raw_all.notna(), None), typed_all, sources)

"""Write a run's output folder: annotated lines, findings, summary. All files or none.

Files are written into a fresh folder beside `--out` and swapped in with one atomic
`renameat2(RENAME_EXCHANGE)` where the kernel offers it, so a run killed at any point leaves the
previous output whole. The annotated file carries the export's cells as read; only its scrub_
columns (this tool's text) have cells a spreadsheet would run as formulas neutralised.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from scrubber.claims import header_text
from scrubber.errors import InputError
from scrubber.loader import RulePack
from scrubber.memory import libc
from scrubber.scrub import ScrubResult

SCRUB_COLUMNS = ["scrub_status", "scrub_causes", "scrub_rule_ids", "scrub_carcs", "scrub_messages"]
SEVERITY_RANK = {"clean": 0, "at-risk": 1, "deny": 2}


def _join_runs(rows: np.ndarray, values: pd.Series, sep: str) -> tuple[np.ndarray, np.ndarray]:
    """Join `values` over runs of equal `rows` (rows sorted): (the row of each run, its text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    offsets = pa.array(np.append(starts, len(rows)), pa.int64())
    runs = pa.LargeListArray.from_arrays(offsets, pa.array(values.astype(object).to_numpy(), pa.large_string()))
    return rows[starts], pc.binary_join(runs, pa.scalar(sep, pa.large_string())).to_numpy(zero_copy_only=False)


def line_annotations(n_lines: int, findings: pd.DataFrame) -> pd.DataFrame:
    """The scrub_ columns for every line (clean lines included), in line order."""
    out = {c: np.full(n_lines, "", dtype=object) for c in SCRUB_COLUMNS}
    out["scrub_status"][:] = "clean"
    if len(findings):
        ordered = findings.sort_values(["row", "rule_id"], kind="stable")
        rows = ordered["row"].to_numpy(dtype=np.int64)
        flagged = np.unique(rows)
        out["scrub_status"][flagged] = "at-risk"
        out["scrub_status"][np.unique(rows[(ordered["severity"] == "deny").to_numpy()])] = "deny"
        causes = ordered[["row", "cause"]].drop_duplicates().sort_values(["row", "cause"], kind="stable")
        carcs = ordered[["row", "carc"]].drop_duplicates()  # first appearance, in rule id order
        for column, part, value, sep in (
            ("scrub_causes", causes, "cause", ";"),
            ("scrub_rule_ids", ordered, "rule_id", ";"),
            ("scrub_carcs", carcs, "carc", ";"),
            ("scrub_messages", ordered, "message", " | "),
        ):
            where, texts = _join_runs(part["row"].to_numpy(dtype=np.int64), part[value], sep)
            out[column][where] = texts
    return pd.DataFrame(out)


def _csv_cells(values: pd.Series, neutralise: bool) -> Any:
    """A column's cells as an Arrow string array; with `neutralise`, text a spreadsheet would
    evaluate (OWASP CSV injection) is prefixed with a quote, while plain signed numbers ("-12.50",
    "+1,000") are data."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = pa.array(values.astype("string"), pa.string(), from_pandas=True)
    if isinstance(cells, pa.ChunkedArray):  # a column concatenated from several inputs' pieces
        cells = cells.combine_chunks()
    if not neutralise:
        return cells
    risky = pc.is_in(pc.utf8_slice_codeunits(cells, 0, 1), value_set=pa.array(list("=+-@\t\r")))  # 2x a regex
    if not pc.any(risky).as_py():  # the usual case: the few risky cells are checked one by one below
        return cells
    texts = pd.Series(cells.filter(risky).to_pylist(), dtype="string")
    number = pd.to_numeric(texts.str.replace(",", "", regex=False), errors="coerce").notna().to_numpy()
    quoted = [text if is_number else "'" + text for text, is_number in zip(texts, number, strict=True)]
    return pc.replace_with_mask(cells, risky, pa.array(quoted, pa.string()))


def annotated_frame(raw: pd.DataFrame, findings: pd.DataFrame) -> pd.DataFrame:
    """The raw cells of the lines (rows 0..n-1 of `findings`) with the scrub_ columns after them."""
    notes = line_annotations(len(raw), findings)
    raw = raw.copy()
    for column in SCRUB_COLUMNS:
        if column in raw.columns:  # an export that already went through the scrubber
            raw = raw.drop(columns=column)
    notes.index = raw.index
    return pd.concat([raw, notes], axis=1)


FINDING_FIELDS = ("claim_id", "line_no", "rule_id", "cause", "severity", "carc", "message", "fix")


def _json_texts(values: pd.Series) -> Any:
    """The JSON text of each value as an Arrow array: strings quoted (json.dumps only for the few
    that need escaping), integers as digits, null for missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pd.api.types.is_integer_dtype(values.dtype):
        texts = pc.cast(pa.array(values.astype("Int64"), pa.int64(), from_pandas=True), pa.large_string())
    else:
        strings = pa.array(values, pa.large_string(), from_pandas=True)  # no copy if Arrow-backed (streamed)
        # Findings repeat their texts (a rule's cause, message, fix): each distinct one is quoted
        # and checked once, then taken for every finding (a null index takes a null).
        encoded = strings.dictionary_encode()
        distinct = encoded.dictionary
        quote = pa.scalar('"', pa.large_string())
        quoted = pc.binary_join_element_wise(quote, distinct, quote, pa.scalar("", pa.large_string()))
        escaped = pc.match_substring_regex(distinct, r'["\\\x00-\x1f]')
        if pc.any(escaped).as_py():  # quotes, backslashes, control characters: as json.dumps writes them
            rows = np.flatnonzero(escaped.to_numpy(zero_copy_only=False))
            fixed = [json.dumps(distinct[int(i)].as_py(), ensure_ascii=False) for i in rows]
            quoted = pc.replace_with_mask(quoted, escaped, pa.array(fixed, pa.large_string()))
        texts = quoted.take(encoded.indices)
    return pc.fill_null(texts, "null")


def write_findings_jsonl(result: ScrubResult, pack: RulePack, handle: BinaryIO) -> None:
    """Append findings.jsonl's lines to `handle`: one object per finding with the contract's keys,
    in line then rule order."""
    findings = result.findings
    if not len(findings):
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    sources = {
        r.id: json.dumps([s.title + (f" {s.url}" if s.url else "") for s in r.sources], ensure_ascii=False)
        for r in pack.rules
    }
    columns = [_json_texts(findings["line_no"].astype("Int64") if name == "line_no" else findings[name])
               for name in FINDING_FIELDS]
    columns.append(pa.array(findings["rule_id"].astype(object).map(sources).to_numpy(), pa.large_string()))
    keys = [*FINDING_FIELDS, "sources"]
    # Each line joined by Arrow from literal keys and the JSON texts (a Python format per finding
    # costs seconds at a million findings); the joined lines' data buffer is the file's bytes.
    parts: list[Any] = []
    for i, (key, texts) in enumerate(zip(keys, columns, strict=True)):
        parts += [pa.scalar(("{" if i == 0 else ", ") + f'"{key}": ', pa.large_string()), texts]
    lines = pc.binary_join_element_wise(*parts, pa.scalar("}\n", pa.large_string()), pa.scalar("", pa.large_string()))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    handle.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])


def write_findings(result: ScrubResult, pack: RulePack, path: Path) -> None:
    with path.open("wb") as handle:
        write_findings_jsonl(result, pack, handle)


def file_sha256(path: Path) -> str:
    """The file's SHA-256; for a folder (a Parquet dataset), the SHA-256 of the `sha256sum`-style
    listing of every file below it, by relative path."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        listing = "".join(f"{file_sha256(f)}  {f.relative_to(path).as_posix()}\n" for f in files)
        return hashlib.sha256(listing.encode("utf-8")).hexdigest()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def annotated_name(fmt: str) -> str:
    return "annotated.parquet" if fmt == "parquet" else "annotated.csv"


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with path.open("wb") as handle:
        write_csv_rows(frame, handle, header=True)


def write_csv_rows(frame: pd.DataFrame, handle: BinaryIO, header: bool) -> None:
    """Arrow's CSV writer (20x pandas' to_csv): every text cell quoted, a missing cell left empty.
    The export's cells and headers are written as read (the contract carries them untouched); the
    scrub_ columns, this tool's own text, have formulas neutralised (a message quoting a cpt of
    "=HYPERLINK(...)" starts with it). Appends to `handle`, with the header row first when `header`."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = [_csv_cells(frame[c], neutralise=c in SCRUB_COLUMNS) for c in frame.columns]
    names = [header_text(c) for c in frame.columns]
    if header:
        handle.write((",".join('"' + h.replace('"', '""') + '"' for h in names) + "\n").encode("utf-8"))
    table = pa.Table.from_arrays(columns, names=[f"c{i}" for i in range(len(names))])  # headers may repeat
    pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=False))


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with ParquetRows(path) as rows:
        rows.append(parquet_table(frame))


class ParquetRows:
    """Appends tables to a Parquet file in row groups of a fixed size, so the file's bytes do not
    depend on how the rows arrived (one frame, or a streamed run's pieces)."""

    ROW_GROUP = 65_536

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None
        self.pending: list[Any] = []

    def append(self, table: Any) -> None:
        self.pending.append(table)
        if sum(t.num_rows for t in self.pending) >= self.ROW_GROUP:
            self._flush(whole_groups=True)

    def _flush(self, whole_groups: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables(self.pending)
        n = table.num_rows // self.ROW_GROUP * self.ROW_GROUP if whole_groups else table.num_rows
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        if n or not whole_groups:
            self.writer.write_table(table.slice(0, n), row_group_size=self.ROW_GROUP)
        self.pending = [table.slice(n)]

    def __enter__(self) -> ParquetRows:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None and self.pending:
            self._flush(whole_groups=False)
        if self.writer is not None:
            self.writer.close()


def parquet_table(frame: pd.DataFrame) -> Any:
    """The annotated lines as an Arrow table of strings (None for missing), for Parquet."""
    import pyarrow as pa

    # Parquet needs distinct column names: a blank or repeated header gets its position appended.
    names = [header_text(c) if header_text(c) == c else f"{header_text(c).strip() or 'column'}_{c.split(chr(0))[1].split()[-1]}"
             for c in frame.columns]
    columns = [pa.array(frame[c].map(lambda v: v if v is None or isinstance(v, str) else str(v), na_action="ignore")
                        .astype(object).where(frame[c].notna(), None), pa.string(), from_pandas=True)
               for c in frame.columns]
    return pa.Table.from_arrays(columns, names=names)


def _write_in_child(write: Callable[[Path], None], path: Path) -> multiprocessing.process.BaseProcess:
    """Run one writer in a forked process; it exits 0 or 1 and prints nothing (no data in tracebacks)."""

    def run() -> None:
        try:
            write(path)
        except BaseException:
            os._exit(1)
        os._exit(0)

    child = multiprocessing.get_context("fork").Process(target=run)
    child.start()
    return child


def remove_abandoned(out: Path) -> None:
    """Delete staging and spill folders that killed runs left beside `out` (their process no longer
    exists)."""
    for folder in out.parent.glob(f".{out.name}.new-*-*"):
        pid = folder.name.removeprefix(f".{out.name}.new-").split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What a run writes: a folder holding only these is a previous output, and is replaced whole.
OUTPUT_FILES = frozenset({"annotated.csv", "annotated.parquet", "findings.jsonl", "summary.json", "summary.md",
                          "report.html", "junit.xml"})


def prepare_out(out: Path, inputs: list[Path]) -> None:
    """Check `--out` before any work: a file there, or a file where one of its parent folders should
    be, would only fail once the scrub is done; a folder holding anything but a previous output
    (an input export, an archive) would be lost when the new output replaces it. Creates the
    parent folders."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: a file is there; give a folder (it is created, or replaced whole)")
    resolved = out.resolve()
    inside = [p for p in inputs if p.resolve().is_relative_to(resolved)]
    if inside:  # even one named like an output (an export called findings.jsonl)
        raise InputError(f"--out {out}: input {inside[0]} is inside it, and replacing the folder would delete it; "
                         "give an output folder apart from the inputs")
    if out.is_dir():
        foreign = [entry for entry in out.iterdir()
                   if entry.name not in OUTPUT_FILES or entry.is_symlink() or not entry.is_file()]
        if foreign:  # named by count only: a file name may name a patient
            raise InputError(f"--out {out}: the folder holds {len(foreign)} file(s) or folder(s) that are not scrubber "
                             "outputs, which replacing it would delete; give a new or empty folder, or a previous output folder")
    existing = next((p for p in resolved.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise InputError(f"--out {out}: {existing} is a file, not a folder")
    try:
        resolved.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: its parent folder cannot be created ({exc.strerror or exc.__class__.__name__})") from None
    try:  # the output (and a streamed run's spill) is made beside `out` first: find out now, not after the scrub
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=resolved.parent))
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise InputError(f"--out {out}: cannot write in {resolved.parent} ({reason})") from None


def write_output(out: Path, writers: dict[str, Callable[[Path], None]], workers: int = 1) -> None:
    """Write every file into a new folder, then swap it in for `out` at once.

    With workers > 1 the first two (largest) files are written by forked processes while this
    one writes the rest. `out`'s parent folder exists (prepare_out, before the run).
    """
    out = out.resolve()
    remove_abandoned(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-{os.getpid()}-", dir=out.parent))
    try:
        os.chmod(staging, _folder_mode(out))  # mkdtemp's 0700 would lock out the next step's user
        items = list(writers.items())
        aside = items[:2] if workers > 1 and len(items) > 2 else []
        children = [(name, _write_in_child(write, staging / name)) for name, write in aside]
        for name, write in items[len(aside):]:
            write(staging / name)
        for name, child in children:
            child.join()
            if child.exitcode != 0:
                raise OSError(f"writing {name} failed")
        _swap_in(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _folder_mode(out: Path) -> int:
    """The permissions the output folder keeps: those of the folder it replaces, or the umask's."""
    if out.is_dir():
        return out.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


_RENAME_EXCHANGE = 2


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    if not out.is_dir():
        raise OSError(f"{out} exists and is not a folder")
    renameat2 = getattr(libc(), "renameat2", None)
    if renameat2 is not None:
        at_fdcwd = -100
        if renameat2(at_fdcwd, os.fsencode(staging), at_fdcwd, os.fsencode(out), _RENAME_EXCHANGE) == 0:
            shutil.rmtree(staging, ignore_errors=True)  # now holds the previous output
            return
    # No atomic exchange here (non-Linux, old kernel, some filesystems): two renames, with a
    # window in which `out` is briefly absent but the previous output survives beside it.
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=False) + "\n"

"""Scrub an export larger than memory: read in pieces, spilled to disk by patient, scrubbed one
bucket of patients at a time, written back in input order.

1. Read: this process parses the export piece by piece and spills each piece's raw cells; a worker
   types the piece and files its lines by patient bucket, and the columns that batch-wide facts
   read by the bucket of their key (sessions by session id, claim line keys by claim id).
2. Batch-wide facts are derived per key bucket (every line of a session or claim is in one).
3. Each patient bucket gets its batch-wide facts, then is scrubbed exactly as a whole batch is
   (scrub.scrub_lines); its findings are filed by the piece they belong to.
4. Each piece is annotated by a worker into part files, which this process appends, in input
   order, to the annotated file and findings.jsonl, keeping the few columns the summary and
   reports need.

Steps 1-4 run in forked worker processes when there are several. Findings are the same whatever
the piece size or the number of buckets or workers: each fact is computed over every line it spans.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from scrubber import output
from scrubber.claims import Columns, Piece, count_sources, type_columns
from scrubber.derive import FAMILIES, DeriveContext, derive
from scrubber.fields import SEVERITIES
from scrubber.junit import MAX_LISTED
from scrubber.loader import RulePack
from scrubber.memory import release_memory
from scrubber.processes import fork_pool
from scrubber.progress import stage
from scrubber.report_html import TABLE_ROWS
from scrubber.scrub import ScrubResult, collect, fields_used, scrub_lines, shard_of

ROW = "__row"  # the line's position in the whole input
BUCKET = "__bucket"  # its patient bucket
# The typed columns the summary and the reports read, kept for every line (text as categories:
# 10M lines' payer and code columns take 50 MB, not 600).
REPORT_COLUMNS = ["service_date", "payer_type", "payer_id", "cpt", "charge", "units"]
_CATEGORIES = ("payer_type", "payer_id", "cpt")


@dataclass
class StreamedRun:
    """What the streamed passes leave for the summary and reports."""

    lines: pd.DataFrame  # REPORT_COLUMNS of every line, in input order
    status: pd.Series  # scrub_status of every line
    findings: pd.DataFrame  # every finding (FINDING_COLUMNS); claim_id, message, fix only where the reports list them (_Kept)
    sources: list[tuple[str, int]]
    root: Path  # the spill folder (the caller removes it)
    annotated: Path  # the finished annotated file and findings.jsonl, in the spill folder
    findings_jsonl: Path


def _compact(typed: pd.DataFrame) -> pd.DataFrame:
    lines = typed[REPORT_COLUMNS].copy()
    for column in _CATEGORIES:
        lines[column] = lines[column].astype("category")
    return lines


def _concat_compact(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from the compact pieces, filled into arrays of the final size while the pieces are
    let go one by one (pd.concat would hold every piece and the result at once: twice the memory)."""
    assert parts, "a streamed run has more than one piece"
    total = sum(len(p) for p in parts)
    categories = {c: pd.Index(list(dict.fromkeys(v for p in parts for v in p[c].cat.categories))) for c in _CATEGORIES}
    codes = {c: np.empty(total, dtype=np.int32) for c in _CATEGORIES}
    numbers = {c: (np.empty(total, dtype=parts[0][c].dtype.numpy_dtype), np.empty(total, dtype=bool))
               for c in ("charge", "units")}
    dates = np.empty(total, dtype="datetime64[s]")
    at = 0
    while parts:
        piece = parts.pop(0)
        end = at + len(piece)
        for c in _CATEGORIES:  # the piece's codes in the union's numbering; -1 (missing) stays -1
            renumber = np.append(categories[c].get_indexer(piece[c].cat.categories), -1)
            codes[c][at:end] = renumber[piece[c].cat.codes.to_numpy()]
        for c, (values, mask) in numbers.items():
            values[at:end] = piece[c].to_numpy(dtype=values.dtype, na_value=0)
            mask[at:end] = piece[c].isna().to_numpy()
        dates[at:end] = piece["service_date"].to_numpy(dtype="datetime64[s]")
        at = end
    columns: dict[str, object] = {"service_date": dates}
    for c in _CATEGORIES:
        columns[c] = pd.Categorical.from_codes(codes[c], categories=categories[c])
    columns["charge"] = pd.arrays.FloatingArray(*numbers["charge"])
    columns["units"] = pd.arrays.IntegerArray(*numbers["units"])
    return pd.DataFrame(columns)[REPORT_COLUMNS]


def bucket_count(estimated_lines: int, chunk_lines: int) -> int:
    """Patient buckets: about one piece's worth of lines each, so a bucket fits in memory."""
    return int(np.clip(-(-estimated_lines // chunk_lines), 2, 256))


def _batch_families(pack: RulePack) -> list[str]:
    """The batch-wide families whose fields the rules read."""
    wanted = fields_used(pack)
    return [f.name for f in FAMILIES.values() if f.scope == "batch" and any(d.name in wanted for d in f.fields)]


class _Spill:
    """Arrow IPC files in a folder, each written once with its rows sorted by group and one record
    batch per group, so that reading one group's rows reads that batch of each file and nothing
    else (uncompressed: a streamed run needs about twice the export's size on disk)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, frame: pd.DataFrame, groups: np.ndarray | None = None, count: int = 1) -> np.ndarray:
        """Write `frame` sorted by `groups` (0..count-1); return where each group starts (count + 1)."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if groups is None:
            groups = np.zeros(len(frame), dtype=np.int64)
        else:
            table = table.take(np.argsort(groups, kind="stable"))
        starts = np.concatenate([[0], np.cumsum(np.bincount(groups, minlength=count))])
        empty = pa.RecordBatch.from_arrays([pa.array([], type=f.type) for f in table.schema], schema=table.schema)
        batches = []
        for group in range(count):
            rows = table.slice(starts[group], starts[group + 1] - starts[group]).combine_chunks().to_batches()
            batches.append(rows[0] if rows else empty)
        self.write_batches(name, table.schema, batches)
        return starts

    def write_batches(self, name: str, schema: pa.Schema, batches: list[pa.RecordBatch]) -> None:
        """Write the batches as they are, empty ones included: batch i is group i."""
        with pa.OSFile(str(self.root / name), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)

    def table(self, name: str) -> pa.Table:
        """A whole file, mapped (no copy)."""
        return pa.ipc.open_file(pa.memory_map(str(self.root / name))).read_all()

    def read(self, parts: list[tuple[str, np.ndarray]], group: int = 0) -> pd.DataFrame:
        """Group `group`'s rows of each file (name, group starts), in file order."""
        batches = []
        for name, starts in parts:
            if starts[group + 1] > starts[group] or not batches:  # the first keeps the schema of an empty group
                batches.append(pa.ipc.open_file(pa.memory_map(str(self.root / name))).get_batch(group))
        # The files' batches in one chunk: pandas then works on one array per column, not one per file.
        tables = [pa.Table.from_batches([b]) for b in batches]
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks().to_pandas()


@dataclass
class _Layout:
    """Where a streamed run's spilled rows are: per file, where each bucket's rows start."""

    buckets: int  # patient buckets
    key_buckets: int  # buckets of the batch-wide families' keys (sessions, claims)
    lines: list[np.ndarray]  # per piece
    keyed: dict[str, list[np.ndarray]]  # per batch family, per piece
    facts: dict[str, list[np.ndarray]]  # per batch family, per key bucket


def _spill_raw(spill: _Spill, index: int, raw: pd.DataFrame) -> None:
    names = [f"c{i}" for i in range(raw.shape[1])]  # headers may repeat or be blank
    spill.write(f"raw-{index}", raw.set_axis(names, axis=1).astype("string"))


@dataclass
class _PieceInfo:
    file_index: int
    file: str
    first_row: int  # the number of its first line among the file's lines, from 1
    start: int  # row of its first line in the whole input
    lines: int
    columns: list[str]  # its raw column names


def _type_piece(task: tuple[int, _PieceInfo, Columns, dict[int, str], tuple[int, int, tuple[str, ...]]]
                ) -> tuple[np.ndarray, dict[str, np.ndarray], pd.DataFrame]:
    """Type one spilled piece; file its lines by patient bucket and the columns the batch families
    read by key bucket. Returns where each bucket starts in those files, and the piece's report
    columns. Runs in a worker."""
    index, info, columns, row_problems, (buckets, key_buckets, families) = task
    assert _SHARED is not None
    spill = _Spill(_SHARED[0])
    raw = spill.read([(f"raw-{index}", np.array([0, info.lines]))])
    raw.columns = info.columns
    raw.attrs["row_problems"] = row_problems  # damaged rows the reader found (claims.type_columns)
    typed = type_columns(raw, columns, (info.file, info.first_row))
    typed[ROW] = np.arange(info.start, info.start + info.lines, dtype=np.int64)
    bucket = shard_of(typed["patient_id"], buckets).astype(np.int64)
    typed[BUCKET] = bucket
    lines = spill.write(f"lines-{index}", typed, bucket, buckets)
    keyed = {}
    for family in families:
        f = FAMILIES[family]
        narrow = typed[[*f.reads, ROW, BUCKET]]
        key_bucket = shard_of(narrow[f.key], key_buckets).astype(np.int64)
        if not f.missing_key_groups:  # most lines have no session: spread them, or one bucket gets them all
            alone = narrow[f.key].isna().to_numpy()
            key_bucket[alone] = narrow[ROW].to_numpy()[alone] % key_buckets
        keyed[family] = spill.write(f"{family}-in-{index}", narrow, key_bucket, key_buckets)
    report = _compact(typed)
    del raw, typed
    release_memory()
    return lines, keyed, report


def _derive_key_bucket(task: tuple[str, int, list[np.ndarray], int]) -> np.ndarray:
    """One batch-wide family's facts for one key bucket (every line of a session or claim is in
    one), written sorted by patient bucket; returns where each patient bucket starts. Runs in a worker."""
    family, k, per_piece, buckets = task
    assert _SHARED is not None
    root, pack, run_date = _SHARED
    spill = _Spill(root)
    names = [f.name for f in FAMILIES[family].fields]
    lines = spill.read([(f"{family}-in-{i}", starts) for i, starts in enumerate(per_piece)], k)
    facts = derive(lines, DeriveContext(pack.reference, run_date), fields_used(pack) & set(names), scopes=("batch",))
    facts = facts[[ROW, *(n for n in names if n in facts.columns)]]
    return spill.write(f"{family}-out-{k}", facts, lines[BUCKET].to_numpy(dtype=np.int64), buckets)


def _scrub_bucket(task: tuple[int, _Layout, np.ndarray]) -> np.ndarray:
    """Scrub one patient bucket; write its findings sorted by piece; return where each piece's
    findings start. Runs in a forked worker."""
    bucket, layout, starts = task
    assert _SHARED is not None
    root, pack, run_date = _SHARED
    spill = _Spill(root)
    lines = spill.read([(f"lines-{i}", s) for i, s in enumerate(layout.lines)], bucket)
    for family, per_key in layout.facts.items():
        facts = spill.read([(f"{family}-out-{k}", s) for k, s in enumerate(per_key)], bucket)
        lines = lines.merge(facts, on=ROW, how="left", validate="one_to_one", sort=False)
    parts = scrub_lines(lines, np.arange(len(lines)), pack, run_date) if len(lines) else []
    found = collect(parts).findings
    found["row"] = lines[ROW].to_numpy()[found["row"].to_numpy(dtype=np.int64)]
    found["line_no"] = found["line_no"].astype("Int64")
    piece = np.searchsorted(starts, found["row"].to_numpy(), side="right") - 1
    starts_of_pieces = spill.write(f"found-{bucket}", found, piece.astype(np.int64), len(starts))
    del lines, parts, found
    release_memory()  # a worker scrubs bucket after bucket: without this its heap only grows
    return starts_of_pieces


@contextlib.contextmanager
def _workers(root: Path, pack: RulePack, run_date: date, workers: int) -> Iterator[Any]:
    """A pool of forked workers (or None for one), forked now while this process is small: the
    lines kept for the reports grow with the export, and a worker forked later would carry them."""
    global _SHARED
    _SHARED = (root, pack, run_date)
    pool = fork_pool(workers) if workers > 1 else None
    try:
        if pool is not None:
            pool.submit(int).result()  # a fork-context pool starts every worker at its first task
        yield pool
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _SHARED = None


def _map(pool: ProcessPoolExecutor | None, fn: Callable[[Any], Any], tasks: list[Any]) -> Iterator[Any]:
    """fn over the tasks, in the workers when there are some; results in task order."""
    return pool.map(fn, tasks) if pool else map(fn, tasks)


def _piece_findings(spill: _Spill, found: list[np.ndarray], index: int, start: int) -> pd.DataFrame:
    parts = [(f"found-{b}", starts) for b, starts in enumerate(found)]
    findings = spill.read(parts, index).sort_values(["row", "rule_id"], kind="stable")
    findings["row"] -= start
    return findings.reset_index(drop=True)


class _Kept:
    """Which findings keep their claim, message and fix for the reports: the first TABLE_ROWS (the
    report's table) and the first MAX_LISTED of each rule and severity (junit.xml's listings)."""

    def __init__(self) -> None:
        self.seen = 0
        self.per_group: dict[str, int] = {}  # findings so far of each rule and severity

    def detailed(self, findings: pd.DataFrame) -> np.ndarray:
        keep = np.arange(self.seen, self.seen + len(findings)) < TABLE_ROWS
        self.seen += len(findings)
        group = findings["rule_id"].astype(str) + " " + findings["severity"].astype(str)
        earlier = group.map(self.per_group).fillna(0).to_numpy(dtype=np.int64)
        keep |= group.groupby(group, sort=False).cumcount().to_numpy() + earlier < MAX_LISTED
        for g, n in group.value_counts().items():
            self.per_group[g] = self.per_group.get(g, 0) + int(n)
        return keep


_DETAILS = ["claim_id", "message", "fix"]  # the findings' columns the parent keeps only for some (_Kept)


def _annotate_piece(task: tuple[int, _PieceInfo, list[np.ndarray], list[str], str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Write one piece's annotated lines and findings.jsonl lines to part files and its findings'
    details to the spill; return its statuses (codes of SEVERITY_RANK) and its findings with the
    details left empty. Runs in a worker."""
    index, piece, found, columns, fmt = task
    assert _SHARED is not None
    root, pack, _ = _SHARED
    spill = _Spill(root)
    raw = spill.read([(f"raw-{index}", np.array([0, piece.lines]))])
    raw.columns = piece.columns
    raw = raw.reindex(columns=columns)  # files with other columns leave theirs empty
    findings = _piece_findings(spill, found, index, piece.start)
    annotated = output.annotated_frame(raw, findings)
    if fmt == "parquet":
        table = output.parquet_table(annotated)
        spill.write_batches(f"annotated-{index}", table.schema, table.to_batches())
    else:
        with (root / f"annotated-{index}").open("wb") as part:
            output.write_csv_rows(annotated, part, header=index == 0)
    with (root / f"findings-{index}").open("wb") as part:
        output.write_findings_jsonl(ScrubResult(findings), pack, part)
    spill.write(f"details-{index}", findings[_DETAILS].astype("string"))
    status = pd.Categorical(annotated["scrub_status"], categories=list(output.SEVERITY_RANK)).codes
    findings["row"] += piece.start
    # Text the counts read, as categories: millions of findings of a few dozen rules.
    categories = {"rule_id": sorted(r.id for r in pack.rules), "cause": sorted({r.cause for r in pack.rules}),
                  "severity": sorted(SEVERITIES), "carc": sorted({r.denial_code for r in pack.rules})}
    for column, values in categories.items():
        findings[column] = pd.Categorical(findings[column], categories=values)
    for column in _DETAILS:
        findings[column] = pd.Series(pd.NA, index=findings.index, dtype="string")
    del raw, annotated
    release_memory()
    return status, findings


def _append_part(path: Path, target: Any) -> None:
    with path.open("rb") as part:
        shutil.copyfileobj(part, target, 1 << 22)
    path.unlink()


def _assemble(spill: _Spill, pieces: list[_PieceInfo], found: list[np.ndarray], columns: list[str], fmt: str,
              pool: ProcessPoolExecutor | None) -> tuple[pd.Series, pd.DataFrame, Path, Path]:
    """Annotate the pieces in the workers; append their parts to the annotated file and
    findings.jsonl in input order, and keep the findings' details the reports list."""
    annotated_path = spill.root / output.annotated_name(fmt)
    findings_path = spill.root / "findings.jsonl"
    statuses, kept_findings = [], []
    kept = _Kept()
    tasks = [(index, piece, found, columns, fmt) for index, piece in enumerate(pieces)]
    with contextlib.ExitStack() as files:
        jsonl_out = files.enter_context(findings_path.open("wb"))
        if fmt == "parquet":
            parquet_out = files.enter_context(output.ParquetRows(annotated_path))
        else:
            csv_out = files.enter_context(annotated_path.open("wb"))
        done = _map(pool, _annotate_piece, tasks)
        for index, (status, findings) in enumerate(done):
            if fmt == "parquet":
                parquet_out.append(spill.table(f"annotated-{index}"))  # mapped: still readable once unlinked
                (spill.root / f"annotated-{index}").unlink()
            else:
                _append_part(spill.root / f"annotated-{index}", csv_out)
            _append_part(spill.root / f"findings-{index}", jsonl_out)
            statuses.append(status)
            detailed = kept.detailed(findings)
            if detailed.any():
                details = spill.read([(f"details-{index}", np.array([0, len(findings)]))])
                for column in _DETAILS:
                    findings.loc[detailed, column] = details[column].to_numpy()[detailed]
            kept_findings.append(findings)
    status = pd.Series(pd.Categorical.from_codes(np.concatenate(statuses), categories=list(output.SEVERITY_RANK)))
    return status, pd.concat(kept_findings, ignore_index=True), annotated_path, findings_path


def scrub_streamed(pieces: Iterator[Piece], pack: RulePack, run_date: date, workers: int, fmt: str,
                   out: Path, estimated_lines: int, chunk_lines: int) -> StreamedRun:
    """Scrub every piece; spill files live beside `out` (same filesystem) and go at the end."""
    output.remove_abandoned(out)  # a killed run's spill can be gigabytes
    spill = _Spill(Path(tempfile.mkdtemp(prefix=f".{out.name}.new-{os.getpid()}-spill-", dir=out.parent)))
    families = _batch_families(pack)
    layout = _Layout(buckets=bucket_count(estimated_lines, chunk_lines),
                     key_buckets=bucket_count(estimated_lines, 3 * chunk_lines),  # a few columns: larger buckets
                     lines=[], keyed={f: [] for f in families}, facts={f: [] for f in families})
    infos: list[_PieceInfo] = []
    columns: dict[str, None] = {}
    report_lines: list[pd.DataFrame] = []
    try:
        with _workers(spill.root, pack, run_date, workers) as pool:
            with stage("read"):
                # This process parses the export; the workers type each piece as it is spilled.
                start = 0
                typing: list[Any] = []
                for index, piece in enumerate(pieces):
                    _spill_raw(spill, index, piece.raw)
                    info = _PieceInfo(piece.file_index, piece.file, piece.first_row, start, len(piece.raw),
                                      list(piece.raw.columns))
                    task = (index, info, piece.columns, piece.raw.attrs.get("row_problems", {}),
                            (layout.buckets, layout.key_buckets, tuple(layout.keyed)))
                    typing.append(pool.submit(_type_piece, task) if pool else task)
                    infos.append(info)
                    columns.update(dict.fromkeys(piece.raw.columns))
                    start += len(piece.raw)
                    del piece
                    release_memory()
                for item in typing:
                    lines, keyed, report = item.result() if pool else _type_piece(item)
                    layout.lines.append(lines)
                    for family, starts in keyed.items():
                        layout.keyed[family].append(starts)
                    report_lines.append(report)
            with stage("scrub"):
                with stage("derive batch-wide facts"):
                    tasks = [(family, k, per_piece, layout.buckets)
                             for family, per_piece in layout.keyed.items() for k in range(layout.key_buckets)]
                    for (family, _, _, _), starts in zip(tasks, _map(pool, _derive_key_bucket, tasks), strict=True):
                        layout.facts[family].append(starts)
                starts = np.array([p.start for p in infos], dtype=np.int64)
                buckets = [(b, layout, starts) for b in range(layout.buckets)]
                found = list(_map(pool, _scrub_bucket, buckets))
            with stage("annotate"):
                status, findings, annotated, findings_jsonl = _assemble(spill, infos, found, list(columns), fmt, pool)
        sources = count_sources([(p.file_index, p.file, p.lines) for p in infos])
        return StreamedRun(_concat_compact(report_lines), status, findings, sources, spill.root, annotated, findings_jsonl)
    except BaseException:
        shutil.rmtree(spill.root, ignore_errors=True)
        raise

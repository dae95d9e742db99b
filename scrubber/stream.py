"""Scrub an export larger than memory: read in pieces, spilled to disk by patient, scrubbed one
bucket of patients at a time, written back in input order.

1. Read: each piece of the export (claims.iter_pieces) is typed; its raw cells are kept on disk
   for the output, its typed lines go to the bucket of their patient, and the columns that
   batch-wide facts read go to the bucket of their key (sessions by session id, claim line keys by
   claim id).
2. Batch-wide facts are derived per key bucket (every line of a session or claim is in one).
3. Each patient bucket gets its batch-wide facts, then is scrubbed exactly as a whole batch is
   (scrub.scrub_lines), in worker processes; its findings are filed by the piece they belong to.
4. Piece by piece, in input order, the annotated file and findings.jsonl are appended to, and the
   few columns the summary and reports need are kept.

Findings are the same whatever the piece size or the number of buckets or workers: each fact is
computed over every line it spans.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scrubber import output
from scrubber.claims import Piece, count_sources
from scrubber.derive import FAMILIES, DeriveContext, derive
from scrubber.fields import SEVERITIES
from scrubber.junit import MAX_LISTED
from scrubber.loader import RulePack
from scrubber.progress import stage
from scrubber.report_html import TABLE_ROWS
from scrubber.scrub import FINDING_COLUMNS, ScrubResult, fields_used, scrub_lines, shard_of

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
    """Concatenate compact pieces; categories are unioned (pd.concat would fall back to text)."""
    lines = pd.concat([p.drop(columns=list(_CATEGORIES)) for p in parts], ignore_index=True)
    for column in _CATEGORIES:
        lines[column] = pd.api.types.union_categoricals([p[column] for p in parts], ignore_order=True)
    return lines[REPORT_COLUMNS]


def bucket_count(estimated_lines: int, chunk_lines: int) -> int:
    """Patient buckets: about one piece's worth of lines each, so a bucket fits in memory."""
    return int(np.clip(-(-estimated_lines // chunk_lines), 2, 256))


def _batch_keys(pack: RulePack) -> dict[str, str]:
    """Batch-wide families the rules need, with the column that groups their lines."""
    wanted = fields_used(pack)
    return {f.name: f.key for f in FAMILIES.values()
            if f.scope == "batch" and any(d.name in wanted for d in f.fields)}


class _Spill:
    """Parquet files in a folder, appended to piece by piece (one writer per file)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.writers: dict[str, pq.ParquetWriter] = {}

    def append(self, name: str, frame: pd.DataFrame) -> None:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = self.writers.get(name)
        if writer is None:
            writer = self.writers[name] = pq.ParquetWriter(self.root / name, table.schema)
        writer.write_table(table.cast(writer.schema))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()

    def read(self, name: str) -> pd.DataFrame | None:
        path = self.root / name
        return pd.read_parquet(path) if path.exists() else None


def _spill_piece(spill: _Spill, index: int, piece: Piece, start: int, buckets: int,
                 batch_keys: dict[str, str]) -> None:
    raw = piece.raw.copy()
    raw.columns = [f"c{i}" for i in range(raw.shape[1])]  # headers may repeat or be blank
    pq.write_table(pa.Table.from_pandas(raw.astype("string"), preserve_index=False), spill.root / f"raw-{index}.parquet")
    typed = piece.typed.assign(**{ROW: np.arange(start, start + len(piece.typed), dtype=np.int64)})
    typed[BUCKET] = shard_of(typed["patient_id"], buckets).astype(np.int64)
    for b, part in typed.groupby(BUCKET, sort=True):
        spill.append(f"lines-{b}.parquet", part)
    for family, key in batch_keys.items():
        narrow = typed[[*FAMILIES[family].reads, ROW, BUCKET]]
        for k, part in narrow.groupby(shard_of(narrow[key], buckets), sort=True):
            spill.append(f"{family}-in-{k}.parquet", part)


def _derive_batch_facts(spill: _Spill, pack: RulePack, run_date: date, buckets: int,
                        batch_keys: dict[str, str]) -> None:
    """Batch-wide facts per key bucket, filed by patient bucket."""
    ctx = DeriveContext(pack.reference, run_date)
    wanted = fields_used(pack)
    for family in batch_keys:
        names = [f.name for f in FAMILIES[family].fields]
        for k in range(buckets):
            lines = spill.read(f"{family}-in-{k}.parquet")
            if lines is None:
                continue
            facts = derive(lines, ctx, wanted & set(names), scopes=("batch",))
            facts = facts[[ROW, BUCKET, *(n for n in names if n in facts.columns)]]
            for b, part in facts.groupby(BUCKET, sort=True):
                spill.append(f"{family}-out-{b}.parquet", part.drop(columns=BUCKET))
    spill.close()


_SHARED: tuple[Path, RulePack, date] | None = None  # set before the workers fork


def _scrub_bucket(task: tuple[int, list[str], np.ndarray]) -> int:
    """Scrub one patient bucket; file its findings by piece. Runs in a forked worker."""
    bucket, families, starts = task
    assert _SHARED is not None
    root, pack, run_date = _SHARED
    spill = _Spill(root)
    lines = spill.read(f"lines-{bucket}.parquet")
    if lines is None:
        return 0
    for family in families:
        facts = spill.read(f"{family}-out-{bucket}.parquet")
        lines = lines.merge(facts, on=ROW, how="left", validate="one_to_one", sort=False)
    parts = scrub_lines(lines, np.arange(len(lines)), pack, run_date)
    if not parts:
        return 0
    found = pd.concat(parts, ignore_index=True)
    found["row"] = lines[ROW].to_numpy()[found["row"].to_numpy()]
    found["line_no"] = found["line_no"].astype("Int64")
    piece_of = np.searchsorted(starts, found["row"].to_numpy(), side="right") - 1
    for p, part in found.groupby(piece_of, sort=True):
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), root / f"found-{p}-{bucket}.parquet")
    return len(found)


@contextlib.contextmanager
def _workers(root: Path, pack: RulePack, run_date: date, workers: int) -> Iterator[Any]:
    """A pool of forked workers (or None for one), forked now while this process is small: the
    lines kept for the reports grow with the export, and a worker forked later would carry them."""
    global _SHARED
    _SHARED = (root, pack, run_date)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) if workers > 1 else None
    try:
        if pool is not None:
            pool.submit(int).result()  # a fork-context pool starts every worker at its first task
        yield pool
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        _SHARED = None


def _release_memory() -> None:
    """Give freed heap back to the system after a piece (glibc keeps it otherwise)."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _piece_findings(root: Path, index: int, start: int) -> pd.DataFrame:
    parts = [pd.read_parquet(p) for p in sorted(root.glob(f"found-{index}-*.parquet"))]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FINDING_COLUMNS})
    found = pd.concat(parts, ignore_index=True).sort_values(["row", "rule_id"], kind="stable")
    found["row"] -= start
    return found.reset_index(drop=True)


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


def _assemble(root: Path, pieces: list[tuple[str, int, int, list[str]]], columns: list[str], fmt: str,
              pack: RulePack) -> tuple[pd.Series, pd.DataFrame, Path, Path]:
    """Write the annotated file and findings.jsonl piece by piece, in input order."""
    annotated_path = root / ("annotated.parquet" if fmt == "parquet" else "annotated.csv")
    findings_path = root / "findings.jsonl"
    statuses, kept_findings = [], []
    kept = _Kept()
    # Text the counts read, as categories: millions of findings of a few dozen rules.
    status_type = pd.CategoricalDtype(list(output.SEVERITY_RANK))
    categories = {"rule_id": sorted(r.id for r in pack.rules), "cause": sorted({r.cause for r in pack.rules}),
                  "severity": sorted(SEVERITIES), "carc": sorted({r.denial_code for r in pack.rules})}
    with contextlib.ExitStack() as files:
        jsonl_out = files.enter_context(findings_path.open("w", encoding="utf-8"))
        if fmt == "parquet":
            parquet_out = files.enter_context(output.ParquetRows(annotated_path))
        else:
            csv_out = files.enter_context(annotated_path.open("wb"))
        for index, (_file, start, _lines, names) in enumerate(pieces):
            raw = pd.read_parquet(root / f"raw-{index}.parquet")
            raw.columns = names
            raw = raw.reindex(columns=columns)  # files with other columns leave theirs empty
            found = _piece_findings(root, index, start)
            result = ScrubResult(found)
            annotated = output.annotated_frame(raw, found)
            if fmt == "parquet":
                parquet_out.append(output.parquet_table(annotated))
            else:
                output.write_csv_rows(annotated, csv_out, header=index == 0)
            jsonl_out.write(output.findings_jsonl(result, pack))
            statuses.append(annotated["scrub_status"].astype(status_type))
            found["row"] += start
            for column, values in categories.items():
                found[column] = pd.Categorical(found[column], categories=values)
            detailed = kept.detailed(found)
            for column in ("claim_id", "message", "fix"):
                found[column] = found[column].astype("string").where(detailed)
            kept_findings.append(found)
    status = pd.concat(statuses, ignore_index=True)
    findings = pd.concat(kept_findings, ignore_index=True)
    return status, findings, annotated_path, findings_path


def scrub_streamed(pieces: Iterator[Piece], pack: RulePack, run_date: date, workers: int, fmt: str,
                   out: Path, estimated_lines: int, chunk_lines: int) -> StreamedRun:
    """Scrub every piece; spill files live beside `out` (same filesystem) and go at the end."""
    output.remove_abandoned(out)  # a killed run's spill can be gigabytes
    root = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-{os.getpid()}-spill-", dir=out.parent))
    spill = _Spill(root)
    buckets = bucket_count(estimated_lines, chunk_lines)
    batch_keys = _batch_keys(pack)
    layout: list[tuple[str, int, int, list[str]]] = []  # file, first row, lines, raw column names
    columns: dict[str, None] = {}
    report_lines: list[pd.DataFrame] = []
    counts: list[tuple[int, str, int]] = []  # (file index, file, lines) of each piece
    try:
        with _workers(root, pack, run_date, workers) as pool:
            with stage("read"):
                start = 0
                for index, piece in enumerate(pieces):
                    _spill_piece(spill, index, piece, start, buckets, batch_keys)
                    layout.append((piece.file, start, len(piece.raw), list(piece.raw.columns)))
                    columns.update(dict.fromkeys(piece.raw.columns))
                    report_lines.append(_compact(piece.typed))
                    counts.append((piece.file_index, piece.file, len(piece.raw)))
                    start += len(piece.raw)
                    del piece
                    _release_memory()
                spill.close()
            with stage("scrub"):
                with stage("derive batch-wide facts"):
                    _derive_batch_facts(spill, pack, run_date, buckets, batch_keys)
                starts = np.array([s for _, s, _, _ in layout], dtype=np.int64)
                tasks = [(b, list(batch_keys), starts) for b in range(buckets)]
                list(pool.map(_scrub_bucket, tasks) if pool else map(_scrub_bucket, tasks))
        with stage("annotate"):
            status, findings, annotated, findings_jsonl = _assemble(root, layout, list(columns), fmt, pack)
        return StreamedRun(_concat_compact(report_lines), status, findings,
                           count_sources(counts), root, annotated, findings_jsonl)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise

"""Write a run's output folder: annotated lines, findings, summary. All files or none.

Files are written into a fresh folder beside `--out` and swapped in with one atomic
`renameat2(RENAME_EXCHANGE)` where the kernel offers it, so a run killed at any point leaves the
previous output whole. The annotated CSV neutralises cells a spreadsheet would run as formulas;
the JSON outputs keep values as they are.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scrubber.claims import ClaimBatch
from scrubber.loader import RulePack
from scrubber.scrub import ScrubResult

SCRUB_COLUMNS = ["scrub_status", "scrub_causes", "scrub_rule_ids", "scrub_carcs", "scrub_messages"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SEVERITY_RANK = {"clean": 0, "at-risk": 1, "deny": 2}


def line_annotations(n_lines: int, findings: pd.DataFrame) -> pd.DataFrame:
    """The scrub_ columns for every line (clean lines included), in line order."""
    status = np.full(n_lines, "clean", dtype=object)
    out = {c: np.full(n_lines, "", dtype=object) for c in SCRUB_COLUMNS[1:]}
    if len(findings):
        for row, group in findings.groupby("row", sort=True):
            severities = set(group["severity"])
            status[row] = "deny" if "deny" in severities else "at-risk"
            out["scrub_causes"][row] = ";".join(sorted(set(group["cause"])))
            out["scrub_rule_ids"][row] = ";".join(sorted(group["rule_id"]))
            out["scrub_carcs"][row] = ";".join(dict.fromkeys(group["carc"]))
            out["scrub_messages"][row] = " | ".join(group["message"])
    return pd.DataFrame({"scrub_status": status, **out})


def neutralise_formula(value: Any) -> Any:
    """Prefix a quote to text a spreadsheet would evaluate (OWASP CSV injection); keep numbers."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value.replace(",", ""))
        return value  # a plain negative or signed number is data, not a formula
    except ValueError:
        return "'" + value


def annotated_frame(batch: ClaimBatch, result: ScrubResult) -> pd.DataFrame:
    notes = line_annotations(len(batch.raw), result.findings)
    raw = batch.raw.copy()
    for column in SCRUB_COLUMNS:
        if column in raw.columns:  # an export that already went through the scrubber
            raw = raw.drop(columns=column)
    notes.index = raw.index
    return pd.concat([raw, notes], axis=1)


def finding_records(result: ScrubResult, pack: RulePack) -> list[dict[str, Any]]:
    sources = {r.id: [s.title + (f" {s.url}" if s.url else "") for s in r.sources] for r in pack.rules}
    records = []
    for f in result.findings.itertuples(index=False):
        line_no = f.line_no
        records.append({
            "claim_id": f.claim_id,
            "line_no": int(line_no) if line_no is not None and line_no is not pd.NA else None,
            "rule_id": f.rule_id,
            "cause": f.cause,
            "severity": f.severity,
            "carc": f.carc,
            "message": f.message,
            "fix": f.fix,
            "sources": sources.get(f.rule_id, []),
        })
    return records


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object:
            safe[column] = safe[column].map(neutralise_formula)
    safe.to_csv(path, index=False, lineterminator="\n")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    # Input cells are text as read; parquet keeps them as strings (None for missing).
    safe = frame.astype(object).where(frame.notna(), None)
    for column in safe.columns:
        safe[column] = safe[column].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    safe.to_parquet(path, index=False)


def write_output(out: Path, writers: dict[str, Callable[[Path], None]]) -> None:
    """Write every file into a new folder, then swap it in for `out` at once."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for name, write in writers.items():
            write(staging / name)
        _swap_in(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


_RENAME_EXCHANGE = 2


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    if not out.is_dir():
        raise OSError(f"{out} exists and is not a folder")
    libc_name = ctypes.util.find_library("c")
    renameat2 = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None) if libc_name else None
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

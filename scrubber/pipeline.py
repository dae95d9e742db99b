"""One scrub run end to end: read, scrub, write all outputs at once."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path

from scrubber import output
from scrubber.claims import load_mapping, read_batch
from scrubber.loader import BUNDLED_RULES, load_pack
from scrubber.report import Report, build_summary
from scrubber.errors import RuleConfigError
from scrubber.scrub import PARALLEL_MIN_LINES, scrub
from scrubber.selftest import baseline_problems


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage; with SCRUBBER_TIMINGS=1 print its name and seconds to stderr (never data)."""
    started = time.perf_counter()
    yield
    if os.environ.get("SCRUBBER_TIMINGS") == "1":
        print(f"scrubber: {name}: {time.perf_counter() - started:.2f} s", file=sys.stderr)


def run_scrub(inputs: list[Path], out: Path, rules_dirs: list[Path], mapping: Path | None, fmt: str,
              fail_on: str, select: list[str], ignore: list[str], run_date: date, workers: int = 1) -> Report:
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    with stage("load rules"):
        pack = load_pack(rules_dirs or [BUNDLED_RULES], select, ignore)
        too_broad = baseline_problems(pack)  # a rule that flags the clean baseline line would flag everything
        if too_broad:
            raise RuleConfigError(too_broad)
    with stage("read"):
        batch = read_batch(inputs, load_mapping(mapping))
    with stage("scrub"):
        result = scrub(batch, pack, run_date, workers)
    with stage("annotate"):
        annotated = output.annotated_frame(batch, result)
    inputs_info = [
        {"file": name, "lines": lines, "sha256": output.file_sha256(path)}
        for (name, lines), path in zip(batch.sources, inputs, strict=True)
    ]
    run_info = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": None,
        "run_date": run_date.isoformat(),
    }
    summary, report = build_summary(annotated["scrub_status"], result.findings, batch.typed, pack,
                                    inputs_info, fail_on, run_info)
    run_info["seconds"] = round(time.perf_counter() - clock, 3)
    annotated_name = "annotated.parquet" if fmt == "parquet" else "annotated.csv"
    writers = {
        annotated_name: (lambda p: output._write_parquet(annotated, p)) if fmt == "parquet"
        else (lambda p: output._write_csv(annotated, p)),
        "findings.jsonl": lambda p: p.write_text(output.findings_jsonl(result, pack), encoding="utf-8"),
        "summary.json": lambda p: p.write_text(output.json_text(summary), encoding="utf-8"),
    }
    with stage("write"):
        output.write_output(out, writers, workers if len(batch.raw) >= PARALLEL_MIN_LINES else 1)
    return report

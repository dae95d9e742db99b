"""One scrub run end to end: read, scrub, write all outputs at once."""

from __future__ import annotations

import os
import sys
import time
from datetime import date, datetime, UTC
from pathlib import Path

from scrubber import output, progress
from scrubber.claims import load_mapping, read_batch
from scrubber.errors import InputError, RuleConfigError
from scrubber.junit import render_junit
from scrubber.loader import BUNDLED_RULES, load_pack
from scrubber.progress import stage
from scrubber.report import EXPECTED_PAYMENT, Report, build_summary, line_dollars
from scrubber.report_html import render_html
from scrubber.scrub import PARALLEL_MIN_LINES, scrub
from scrubber.selftest import baseline_problems
from scrubber.summary_md import render_markdown

STAGES = ("load rules", "read", "scrub", "annotate", "summarise", "write")  # the top-level stages, in order


def run_scrub(inputs: list[Path], out: Path, rules_dirs: list[Path], mapping: Path | None, fmt: str,
              fail_on: str, select: list[str], ignore: list[str], run_date: date, workers: int = 1,
              show_progress: bool = False, engine: str = "local", scheduler: str | None = None) -> Report:
    if scheduler and engine != "dask":
        raise InputError("--scheduler needs --engine dask")
    with progress.shown(show_progress, len(STAGES)):
        report, markdown = _run(inputs, out, rules_dirs, mapping, fmt, fail_on, select, ignore, run_date, workers,
                                engine, scheduler)
    append_step_summary(markdown)
    return report


def append_step_summary(markdown: str) -> None:
    """Add the Markdown summary to a GitHub Actions job page when $GITHUB_STEP_SUMMARY names a file.
    The output folder is written by then: a failure here is a warning, not a failed run."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")
    except OSError as exc:
        print(f"scrubber: warning: could not append the summary to $GITHUB_STEP_SUMMARY ({exc.__class__.__name__})",
              file=sys.stderr)


def _run(inputs: list[Path], out: Path, rules_dirs: list[Path], mapping: Path | None, fmt: str,
         fail_on: str, select: list[str], ignore: list[str], run_date: date, workers: int,
         engine: str = "local", scheduler: str | None = None) -> tuple[Report, str]:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    with stage("load rules"):
        pack = load_pack(rules_dirs or [BUNDLED_RULES], select, ignore)
        too_broad = baseline_problems(pack)  # a rule that flags the clean baseline line would flag everything
        if too_broad:
            raise RuleConfigError(too_broad)
    if engine == "dask":  # read and scrub on the cluster's workers; the outputs are written here
        from scrubber.distributed import read_and_scrub

        with stage("scrub"):
            batch, result = read_and_scrub(inputs, load_mapping(mapping), pack, run_date, scheduler)
    else:
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
    with stage("summarise"):
        money = line_dollars(batch.typed, pack.reference.tables.get(EXPECTED_PAYMENT, []))
        summary, report = build_summary(annotated["scrub_status"], result.findings, batch.typed, pack,
                                        inputs_info, fail_on, run_info, money)
    run_info["seconds"] = round(time.perf_counter() - clock, 3)
    markdown = render_markdown(summary, {r.id: (r.cause, r.denial_code) for r in pack.rules})
    annotated_name = "annotated.parquet" if fmt == "parquet" else "annotated.csv"
    status = annotated["scrub_status"].to_numpy(dtype=object)
    writers = {
        annotated_name: (lambda p: output._write_parquet(annotated, p)) if fmt == "parquet"
        else (lambda p: output._write_csv(annotated, p)),
        "findings.jsonl": lambda p: p.write_text(output.findings_jsonl(result, pack), encoding="utf-8"),
        "summary.json": lambda p: p.write_text(output.json_text(summary), encoding="utf-8"),
        # Reports for people and CI (built while a worker writes the annotated file, when there is one).
        "report.html": lambda p: p.write_text(
            render_html(summary, result.findings, batch.typed, status, money, {r.id: r.name for r in pack.rules}),
            encoding="utf-8"),
        "junit.xml": lambda p: p.write_text(render_junit(summary, result.findings, pack), encoding="utf-8"),
        "summary.md": lambda p: p.write_text(markdown, encoding="utf-8"),
    }
    with stage("write"):
        output.write_output(out, writers, workers if len(batch.raw) >= PARALLEL_MIN_LINES else 1)
    return report, markdown

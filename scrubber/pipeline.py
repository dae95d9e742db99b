"""One scrub run end to end: read, scrub, write all outputs at once."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, UTC
from pathlib import Path

import pandas as pd

from scrubber import output, progress
from scrubber.claims import ClaimBatch, Mapping, Piece, batch_of, estimate_lines, iter_pieces, load_mapping, sources_of
from scrubber.errors import ConfigProblem, InputError, RuleConfigError
from scrubber.fields import INPUT_PROBLEM_CAUSE
from scrubber.junit import render_junit
from scrubber.loader import BUNDLED_RULES, RulePack, load_pack
from scrubber.memory import release_memory
from scrubber.processes import fork_pool
from scrubber.progress import stage
from scrubber.report import EXPECTED_PAYMENT, Report, build_summary, line_dollars
from scrubber.report_html import render_html
from scrubber.scrub import PARALLEL_MIN_LINES, ScrubResult, scrub
from scrubber.selftest import baseline_problems
from scrubber.stream import scrub_streamed
from scrubber.summary_md import render_markdown

STAGES = ("load rules", "read", "scrub", "annotate", "summarise", "write")  # the top-level stages, in order
CHUNK_LINES = 100_000  # an export with more lines is streamed in pieces of this many (bounded memory)


def run_scrub(inputs: list[Path], out: Path, rules_dirs: list[Path], mapping: Path | None, fmt: str,
              fail_on: str, select: list[str], ignore: list[str], run_date: date, workers: int = 1,
              show_progress: bool = False, engine: str = "local", scheduler: str | None = None,
              chunk_lines: int = CHUNK_LINES) -> Report:
    if scheduler and engine != "dask":
        raise InputError("--scheduler needs --engine dask")
    resolved = [p.resolve() for p in inputs]
    twice = next((p for i, p in enumerate(inputs) if resolved[i] in resolved[:i]), None)
    if twice is not None:  # its every line would be a duplicate of itself
        raise InputError(f"{twice}: given twice as an input; give each export once")
    output.prepare_out(out, inputs)
    with progress.shown(show_progress, len(STAGES)):
        report, markdown = _run(inputs, out, rules_dirs, mapping, fmt, fail_on, select, ignore, run_date, workers,
                                engine, scheduler, chunk_lines)
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
         engine: str, scheduler: str | None, chunk_lines: int) -> tuple[Report, str]:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    with stage("load rules"):
        # --select keeps the invalid_input rules (only --ignore drops them): the selected rules do not
        # judge a value that cannot be read, so without them its line would pass as clean.
        pack = load_pack(rules_dirs or [BUNDLED_RULES], [*select, INPUT_PROBLEM_CAUSE] if select else [], ignore)
        baseline_checked = _check_baseline(pack, aside=workers > 1 and engine == "local")
    if engine == "dask":
        baseline_checked()
        scrubbed = _scrub_on_cluster(inputs, load_mapping(mapping), pack, run_date, scheduler, fmt)
    else:
        scrubbed = _scrub_here(inputs, load_mapping(mapping), pack, run_date, workers, fmt, out, chunk_lines,
                               baseline_checked)
    try:
        chosen = {"select": select, "ignore": ignore}  # as given: a report of some rules must say so
        return _report_and_write(scrubbed, inputs, out, pack, fmt, fail_on, run_date, workers, started, clock, chosen)
    finally:
        if scrubbed.spill is not None:
            shutil.rmtree(scrubbed.spill, ignore_errors=True)


_PACK: RulePack | None = None  # the pack a forked baseline check reads (set before the fork)


def _baseline_problems_of_pack() -> list[ConfigProblem]:
    assert _PACK is not None
    return baseline_problems(_PACK)


def _check_baseline(pack: RulePack, aside: bool) -> Callable[[], None]:
    """Check that no rule fires on the clean baseline line (such a rule would flag everything).
    With `aside`, the check runs in a forked process while this one reads the export; the returned
    function waits for it and raises RuleConfigError, before anything is scrubbed."""
    if not aside:
        problems = baseline_problems(pack)
        future = None
    else:
        global _PACK
        _PACK = pack
        pool = fork_pool(1)
        future = pool.submit(_baseline_problems_of_pack)  # forks here: the pack is inherited, not pickled
        pool.shutdown(wait=False)  # the process ends once the check is done
        _PACK = None

    def checked() -> None:
        too_broad = future.result() if future is not None else problems
        if too_broad:
            raise RuleConfigError(too_broad)

    return checked


@dataclass
class _Scrubbed:
    """A scrubbed run, however it was scrubbed: what the summary and reports read, and the writers
    of the annotated file and findings.jsonl."""

    lines: pd.DataFrame  # typed columns of every line (at least stream.REPORT_COLUMNS)
    status: pd.Series  # scrub_status of every line
    findings: pd.DataFrame
    sources: list[tuple[str, int]]
    writers: dict[str, Callable[[Path], None]]
    spill: Path | None = None  # a streamed run's spill folder, removed at the end


def _in_memory(batch: ClaimBatch, result: ScrubResult, pack: RulePack, fmt: str) -> _Scrubbed:
    with stage("annotate"):
        annotated = output.annotated_frame(batch.raw, result.findings)
    write = output.write_parquet if fmt == "parquet" else output.write_csv
    writers = {
        output.annotated_name(fmt): lambda p: write(annotated, p),
        "findings.jsonl": lambda p: output.write_findings(result, pack, p),
    }
    return _Scrubbed(batch.typed, annotated["scrub_status"], result.findings, batch.sources, writers)


def _scrub_on_cluster(inputs: list[Path], mapping: Mapping, pack: RulePack, run_date: date,
                      scheduler: str | None, fmt: str) -> _Scrubbed:
    """Read and scrub on a Dask cluster's workers; the outputs are written here."""
    from scrubber.distributed import read_and_scrub

    with stage("scrub"):
        batch, result = read_and_scrub(inputs, mapping, pack, run_date, scheduler)
    return _in_memory(batch, result, pack, fmt)


def _scrub_here(inputs: list[Path], mapping: Mapping, pack: RulePack, run_date: date, workers: int,
                fmt: str, out: Path, chunk_lines: int, baseline_checked: Callable[[], None]) -> _Scrubbed:
    """An export of up to `chunk_lines` lines is scrubbed in memory; a larger one is streamed."""
    pieces = iter_pieces(inputs, mapping, chunk_lines)
    with stage("read"):
        first: list[Piece] = []
        too_large = False
        for piece in pieces:
            first.append(piece)
            too_large = sum(len(p.raw) for p in first) > chunk_lines
            if too_large:
                break
        if not too_large:  # typed here; a streamed run types its pieces in the workers
            batch = batch_of([p.raw for p in first], [p.typed for p in first], sources_of(first))
    baseline_checked()
    if not too_large:
        with stage("scrub"):
            result = scrub(batch, pack, run_date, workers)
        return _in_memory(batch, result, pack, fmt)
    drained = (first.pop(0) for _ in range(len(first)))  # the stream lets go of each piece once spilled
    run = scrub_streamed(itertools.chain(drained, pieces), pack, run_date, workers, fmt, out.resolve(),
                         estimate_lines(inputs), chunk_lines)
    moved = {p.name: (lambda target, source=p: os.replace(source, target)) for p in (run.annotated, run.findings_jsonl)}
    return _Scrubbed(run.lines, run.status, run.findings, run.sources, moved, run.root)


def _report_and_write(scrubbed: _Scrubbed, inputs: list[Path], out: Path, pack: RulePack, fmt: str, fail_on: str,
                      run_date: date, workers: int, started: datetime, clock: float,
                      chosen: dict[str, list[str]]) -> tuple[Report, str]:
    inputs_info = [
        {"file": name, "lines": lines, "sha256": output.file_sha256(path)}
        for (name, lines), path in zip(scrubbed.sources, inputs, strict=True)
    ]
    run_info = {
        "started": started.isoformat(timespec="seconds"),
        "seconds": None,
        "run_date": run_date.isoformat(),
        **{option: items for option, items in chosen.items() if items},
    }
    with stage("summarise"):
        money = line_dollars(scrubbed.lines, pack.reference.tables.get(EXPECTED_PAYMENT, []))
        # As a categorical: comparing 10M strings to "deny" line by line is what a run's peak would be made of.
        status = pd.Categorical(scrubbed.status, categories=list(output.SEVERITY_RANK))
        summary, report = build_summary(status, scrubbed.findings, scrubbed.lines, pack,
                                        inputs_info, fail_on, run_info, money)
        release_memory()
    run_info["seconds"] = round(time.perf_counter() - clock, 3)
    markdown = render_markdown(summary, {r.id: (r.cause, r.denial_code) for r in pack.rules})
    writers = {
        **scrubbed.writers,
        "summary.json": lambda p: p.write_text(output.json_text(summary), encoding="utf-8"),
        # Reports for people and CI (built while a worker writes the annotated file, when there is one).
        "report.html": lambda p: p.write_text(
            render_html(summary, scrubbed.findings, scrubbed.lines, status, money, {r.id: r.name for r in pack.rules}),
            encoding="utf-8"),
        "junit.xml": lambda p: p.write_text(render_junit(summary, scrubbed.findings, pack), encoding="utf-8"),
        "summary.md": lambda p: p.write_text(markdown, encoding="utf-8"),
    }
    with stage("write"):
        output.write_output(out, writers, workers if len(status) >= PARALLEL_MIN_LINES else 1)
    return report, markdown

"""The run-level guarantees: atomic output under SIGKILL, byte-identical output, rules that are only data."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from scrubber import engine
from scrubber.loader import BUNDLED_RULES, load_pack
from scrubber.scrub import scrub
from scrubber.selftest import lines_frame
from tests.conftest import ROOT, run_cli, write_csv

sys.path.insert(0, str(ROOT / "benchmarks"))
from make_export import make_export  # noqa: E402  (the benchmark's generator: the sample, tiled)


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def big_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "export.csv"
    make_export(120_000).to_csv(path, index=False)
    return path


def test_a_run_killed_while_writing_leaves_the_previous_output_whole(tmp_path: Path, big_export: Path, baseline: dict) -> None:
    out = tmp_path / "out"
    small = write_csv(tmp_path / "small.csv", [baseline])
    assert run_cli("run", str(small), "--out", str(out)).returncode == 0
    before = digests(out)

    child = subprocess.Popen([sys.executable, "-m", "scrubber", "run", str(big_export), "--out", str(out),
                              "--fail-on", "never"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".out.new-*")) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    staged = list(tmp_path.glob(".out.new-*"))
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert staged, "the run ended before it started writing; the test needs a larger export"
    assert child.returncode == -signal.SIGKILL
    assert digests(out) == before  # the previous output, whole and unchanged
    assert list(tmp_path.glob(".out.new-*"))  # the killed run's half-written files sit beside it

    assert run_cli("run", str(small), "--out", str(out)).returncode == 0
    assert not list(tmp_path.glob(".out.new-*"))  # the next run removes what the killed run left


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc: the tests need no psutil)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while being listed
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists processes through /proc")
def test_a_killed_worker_stops_the_run_with_exit_2_and_writes_nothing(tmp_path: Path, big_export: Path,
                                                                       baseline: dict) -> None:
    """The kernel kills a worker when memory runs out: the run must say so and leave the output alone."""
    out = tmp_path / "out"
    small = write_csv(tmp_path / "small.csv", [baseline])
    assert run_cli("run", str(small), "--out", str(out)).returncode == 0
    before = digests(out)

    child = subprocess.Popen([sys.executable, "-m", "scrubber", "run", str(big_export), "--out", str(out),
                              "--workers", "2", "--chunk-lines", "20000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    killed = 0
    deadline = time.monotonic() + 300
    while child.poll() is None and time.monotonic() < deadline:
        for pid in _children(child.pid):  # the streamed run's workers live until it has written its pieces
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
        time.sleep(0.01)
    _, stderr = child.communicate(timeout=60)
    assert killed, "the run ended before a worker could be killed"
    assert child.returncode == 2
    assert "scrubber: error: a worker process was killed (out of memory?); nothing was written" in stderr
    assert digests(out) == before


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="lists processes through /proc")
def test_workers_end_when_the_main_process_is_killed(tmp_path: Path, big_export: Path) -> None:
    """A cron timeout or the out-of-memory killer may SIGKILL the main process: its idle workers must
    not wait for work forever."""
    child = subprocess.Popen([sys.executable, "-m", "scrubber", "run", str(big_export), "--out", str(tmp_path / "out"),
                              "--workers", "2", "--chunk-lines", "20000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(_children(child.pid)) < 2 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = _children(child.pid)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert len(workers) >= 2, "the run ended before its workers started"
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_output_is_byte_identical_whatever_the_number_of_workers(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    make_export(30_000).to_csv(export, index=False)  # above the size at which workers are used
    runs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        done = run_cli("run", str(export), "--out", str(out), "--workers", workers, "--run-date", "2026-10-01")
        assert done.returncode == 1, done.stderr
        runs[workers] = out
    for name in ("annotated.csv", "findings.jsonl"):
        assert (runs["1"] / name).read_bytes() == (runs["2"] / name).read_bytes(), name
    one, two = (json.loads((runs[w] / "summary.json").read_text()) for w in ("1", "2"))
    for summary in (one, two):
        summary.pop("run")  # start time and seconds: the only fields that may differ
    assert one == two


def test_findings_do_not_depend_on_the_engine_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    with (ROOT / "samples" / "clinic_export.csv").open(encoding="utf-8", newline="") as handle:
        lines = [dict(r) for r in csv.DictReader(handle)]
    results = []
    for chunk in (1000, 7):
        monkeypatch.setattr(engine, "CHUNK_SIZE", chunk)
        pack = load_pack([BUNDLED_RULES])  # compiled afresh: a rule's cap is the chunk size
        batch = lines_frame(lines, {})
        results.append(scrub(batch, replace(pack, compiled={}), date(2026, 10, 1)).findings)
    assert len(results[0]) > 50
    assert results[0].equals(results[1])


def test_yaml_tags_cannot_run_code(tmp_path: Path, baseline: dict) -> None:
    marker = tmp_path / "pwned"
    folder = tmp_path / "rules"
    (folder / "edu").mkdir(parents=True)
    (folder / "edu" / "EDU_EVIL.yaml").write_text(
        f'id: !!python/object/apply:os.system ["touch {marker}"]\nname: evil\n', encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(f'claim_id: !!python/object/apply:os.system ["touch {marker}"]\n', encoding="utf-8")
    export = write_csv(tmp_path / "in.csv", [baseline])
    by_rules = run_cli("run", str(export), "--out", str(tmp_path / "a"), "--rules", str(folder))
    by_mapping = run_cli("run", str(export), "--out", str(tmp_path / "b"), "--mapping", str(mapping))
    assert (by_rules.returncode, by_mapping.returncode) == (2, 2)
    assert "EDU_EVIL.yaml:1:5: invalid YAML" in by_rules.stderr
    assert "mapping.yaml" in by_mapping.stderr
    assert not marker.exists()
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_rule_file_linking_outside_its_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text((BUNDLED_RULES / "edu" / "EDU_CURRICULUM_MISSING.yaml").read_text(), encoding="utf-8")
    folder = tmp_path / "rules" / "edu"
    folder.mkdir(parents=True)
    os.symlink(outside, folder / "EDU_CURRICULUM_MISSING.yaml")
    checked = run_cli("rules", "check", str(tmp_path / "rules"))
    assert checked.returncode == 2
    assert "links outside its rules folder" in checked.stderr


def _outputs(out: Path) -> dict[str, object]:
    """Every output file's bytes, summary.json without its run timing, reports without their timestamps."""
    files: dict[str, object] = {}
    for path in sorted(out.iterdir()):
        if path.name == "summary.json":
            summary = json.loads(path.read_text())
            summary.pop("run")
            files[path.name] = summary
        elif path.name in ("annotated.csv", "annotated.parquet", "findings.jsonl"):
            files[path.name] = path.read_bytes()
        else:  # report.html, junit.xml, summary.md: the same but for when the run started and took
            text = re.sub(r"\d{4}-\d\d-\d\dT[\d:+]+|time=\"[\d.]+\"|\b[\d.]+ s\b", "", path.read_text())
            files[path.name] = text
    return files


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_streamed_run_writes_what_an_in_memory_run_writes(tmp_path: Path, fmt: str) -> None:
    """An export larger than --chunk-lines is read in pieces, spilled by patient and written back in
    order: sessions, patients and claims cut by piece boundaries must still be judged as a whole."""
    import gzip

    export = make_export(2_000)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv.gz"
    export.iloc[:1_300].to_csv(first, index=False)
    with gzip.open(second, "wt", encoding="utf-8", newline="") as handle:
        export.iloc[1_300:].to_csv(handle, index=False)
    runs = {}
    for name, options in {"memory": ["--chunk-lines", "100000", "--workers", "1"],
                          "pieces of 250, 1 worker": ["--chunk-lines", "250", "--workers", "1"],
                          "pieces of 700, 2 workers": ["--chunk-lines", "700", "--workers", "2"]}.items():
        out = tmp_path / name.replace(" ", "_").replace(",", "")
        done = run_cli("run", str(first), str(second), "--out", str(out), "--format", fmt,
                       "--run-date", "2026-10-01", *options)
        assert done.returncode == 1, done.stderr
        runs[name] = _outputs(out)
    memory = runs.pop("memory")
    by_rule = memory["summary.json"]["by_rule"]
    # Facts that span lines are exercised: sessions, duplicates and repeated claim line keys.
    assert by_rule.get("EDU_SESSION_COUNT_MISMATCH") and by_rule.get("DUPLICATE_LINE")
    for name, files in runs.items():
        assert files == memory, name
    assert not list(tmp_path.glob(".*.new-*"))  # no spill or staging folder left behind


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_header_only_file_among_streamed_inputs_is_an_empty_piece(tmp_path: Path, fmt: str) -> None:
    """A file with a header and no lines is a piece of no rows: spilled, typed and annotated like any other."""
    export = make_export(600)
    first, empty, last = tmp_path / "a.csv", tmp_path / "empty.csv", tmp_path / "b.csv"
    export.to_csv(first, index=False)
    export.iloc[:0].to_csv(empty, index=False)
    export.to_csv(last, index=False)
    runs = {}
    for chunk in ("100000", "100"):
        out = tmp_path / f"out{chunk}"
        done = run_cli("run", str(first), str(empty), str(last), "--out", str(out), "--format", fmt,
                       "--run-date", "2026-10-01", "--chunk-lines", chunk, "--fail-on", "never")
        assert done.returncode == 0, done.stderr
        runs[chunk] = _outputs(out)
    assert runs["100"] == runs["100000"]
    assert runs["100"]["summary.json"]["lines"]["total"] == 1200


def test_pieces_cut_only_between_records(tmp_path: Path, baseline: dict) -> None:
    """A quoted cell with line breaks, commas and quotes never straddles two pieces; a short row
    is kept and reported wherever it falls."""
    lines = []
    for i in range(60):
        line = dict(baseline, claim_id=f"C{i:04d}", patient_id=f"P{i:04d}", notes=f'two\nlines, "quoted" {i}')
        lines.append(line)
    export = write_csv(tmp_path / "export.csv", lines)
    text = export.read_text(encoding="utf-8")
    export.write_text(text + "C9999,1\n", encoding="utf-8")  # a ragged last row
    outs = {}
    for chunk in ("100000", "10"):
        out = tmp_path / f"out{chunk}"
        done = run_cli("run", str(export), "--out", str(out), "--chunk-lines", chunk, "--fail-on", "never")
        assert done.returncode == 0, done.stderr
        outs[chunk] = _outputs(out)
    assert outs["10"] == outs["100000"]
    with (tmp_path / "out10" / "annotated.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 61
    assert [r["notes"] for r in rows[:60]] == [f'two\nlines, "quoted" {i}' for i in range(60)]
    assert rows[60]["scrub_status"] != "clean" and "INPUT_" in rows[60]["scrub_rule_ids"]

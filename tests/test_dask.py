"""`scrubber run --engine dask`: the same output files as the local engine, line by line.

One local Dask cluster (two worker processes) serves the module; every run goes through the real
entry point in a subprocess, once with `--engine dask --scheduler ADDRESS` and once locally with
`--workers 1`, and the outputs are compared (summary.json without its run timestamps).
"""

from __future__ import annotations

import csv
import json
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from conftest import SAMPLES, run_cli

distributed = pytest.importorskip("distributed")

RUN_DATE = "2026-10-01"
SENTINEL = "PHI-SENTINEL-123"


@pytest.fixture(scope="module")
def scheduler() -> str:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def arguments(inputs: list[Path], out: Path, *extra: str) -> list[str]:
    return ["run", *map(str, inputs), "--out", str(out), "--run-date", RUN_DATE, "--fail-on", "never", "--quiet",
            *extra]


def scrub(inputs: list[Path], out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*arguments(inputs, out, *extra))


def scrub_both(inputs: list[Path], tmp_path: Path, scheduler: str, *extra: str) -> list[subprocess.CompletedProcess[str]]:
    """The local run (`--workers 1`) and the cluster's, side by side (the test stays fast)."""
    runs = {
        "local": arguments(inputs, tmp_path / "local", "--workers", "1", *extra),
        "dask": arguments(inputs, tmp_path / "dask", "--engine", "dask", "--scheduler", scheduler, *extra),
    }
    started = [subprocess.Popen([sys.executable, "-m", "scrubber", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for args in runs.values()]
    results = []
    for process, args in zip(started, runs.values(), strict=True):
        stdout, stderr = process.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(args, process.returncode, stdout, stderr))
    return results


def assert_same_as_local(inputs: list[Path], tmp_path: Path, scheduler: str, *extra: str) -> None:
    local, dask = scrub_both(inputs, tmp_path, scheduler, *extra)
    assert local.returncode == 0, local.stderr
    assert dask.returncode == 0, dask.stderr
    assert dask.stderr == ""
    for name in ("findings.jsonl", "annotated.csv"):
        expected = (tmp_path / "local" / name).read_text(encoding="utf-8").splitlines()
        got = (tmp_path / "dask" / name).read_text(encoding="utf-8").splitlines()
        assert len(got) == len(expected), name
        for number, (want, have) in enumerate(zip(expected, got, strict=True), start=1):
            assert have == want, f"{name} line {number}"
    summaries = [json.loads((tmp_path / run / "summary.json").read_text(encoding="utf-8")) for run in ("local", "dask")]
    for summary in summaries:
        del summary["run"]["started"], summary["run"]["seconds"]
    assert summaries[0] == summaries[1]
    assert (tmp_path / "local" / "findings.jsonl").stat().st_size > 0  # the comparison compared findings


def split_csv(source: Path, folder: Path, parts: int) -> list[Path]:
    """The export's lines dealt round-robin into `parts` CSV files, each with the header."""
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    paths = [folder / f"part{i + 1}.csv" for i in range(parts)]
    for i, path in enumerate(paths):
        path.write_text(lines[0] + "".join(lines[1 + i :: parts]), encoding="utf-8")
    return paths


def files_of(paths: list[Path], key: tuple[str, ...]) -> dict[tuple[str, ...], set[int]]:
    """For each value of `key` (columns), the files it appears in."""
    seen: dict[tuple[str, ...], set[int]] = {}
    for number, path in enumerate(paths):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if all(row[k] for k in key):
                    seen.setdefault(tuple(row[k] for k in key), set()).add(number)
    return seen


# -- the same output as the local engine ---------------------------------------------------------------
def test_bundled_sample(tmp_path: Path, scheduler: str) -> None:
    assert_same_as_local([SAMPLES / "clinic_export.csv"], tmp_path, scheduler)


def test_sample_split_into_three_files_with_sessions_and_patients_across_them(tmp_path: Path, scheduler: str) -> None:
    parts = split_csv(SAMPLES / "clinic_export.csv", tmp_path, 3)
    sessions = files_of(parts, ("session_id", "service_date"))
    patients = files_of(parts, ("patient_id",))
    assert any(len(files) > 1 for files in sessions.values()), "no session spans files"
    assert any(len(files) > 1 for files in patients.values()), "no patient spans files"
    assert_same_as_local(parts, tmp_path, scheduler)


def test_parquet_file_and_parquet_dataset_folder(tmp_path: Path, scheduler: str) -> None:
    table = pacsv.read_csv(SAMPLES / "clinic_export.csv")  # typed columns: ints, floats, dates
    pq.write_table(table, tmp_path / "export.parquet")
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    step = len(table) // 4 + 1
    for i, start in enumerate(range(0, len(table), step)):
        pq.write_table(table.slice(start, step), dataset / f"part.{i}.parquet")
    assert len(list(dataset.iterdir())) == 4
    hive = tmp_path / "hive"  # payer_type=medicare/ folders: the key is a column, read by every engine
    pq.write_to_dataset(table, hive, partition_cols=["payer_type"])
    assert_same_as_local([tmp_path / "export.parquet", dataset, hive], tmp_path, scheduler)


def test_a_damaged_line_in_a_later_file_of_a_dataset_is_named_by_its_row(tmp_path: Path, scheduler: str) -> None:
    """A line with unreadable values in two columns (shifted cells) has no claim id to be found by:
    its finding names its row among the dataset's lines, the same on every engine."""
    table = pacsv.read_csv(SAMPLES / "clinic_export.csv", convert_options=pacsv.ConvertOptions(
        column_types={name: pa.string() for name in pacsv.read_csv(SAMPLES / "clinic_export.csv").column_names}))
    damaged = 250  # 0-based: the dataset's line 251, in its third file
    units = table.column("units").to_pylist()
    minutes = table.column("minutes").to_pylist()
    units[damaged], minutes[damaged] = "two", "ten"
    table = table.set_column(table.schema.get_field_index("units"), "units", pa.array(units, pa.string()))
    table = table.set_column(table.schema.get_field_index("minutes"), "minutes", pa.array(minutes, pa.string()))
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for i, start in enumerate(range(0, len(table), 120)):
        pq.write_table(table.slice(start, 120), dataset / f"part.{i}.parquet")
    assert_same_as_local([dataset], tmp_path, scheduler)
    findings = (tmp_path / "dask" / "findings.jsonl").read_text(encoding="utf-8").splitlines()
    messages = [json.loads(line)["message"] for line in findings]
    assert [m for m in messages if "row 251 of dataset:" in m] == [
        "cannot read row 251 of dataset: values in several columns cannot be read (columns mapped to the wrong "
        "fields?); unreadable: units, minutes"]


def test_alternative_export_with_its_mapping(tmp_path: Path, scheduler: str) -> None:
    assert_same_as_local([SAMPLES / "alt_export.csv"], tmp_path, scheduler,
                         "--mapping", str(SAMPLES / "alt_mapping.yaml"))


def test_the_batch_is_the_one_read_batch_gives(tmp_path: Path, scheduler: str) -> None:
    import pandas as pd

    from scrubber.claims import read_batch
    from scrubber.distributed import read_and_scrub
    from scrubber.loader import BUNDLED_RULES, load_pack
    from scrubber.scrub import scrub as scrub_batch

    inputs = split_csv(SAMPLES / "clinic_export.csv", tmp_path, 2)
    table = pacsv.read_csv(SAMPLES / "clinic_export.csv")
    (tmp_path / "dataset").mkdir()
    for i, start in enumerate(range(0, len(table), 100)):
        pq.write_table(table.slice(start, 100), tmp_path / "dataset" / f"{i}.parquet")
    inputs.append(tmp_path / "dataset")
    pack = load_pack([BUNDLED_RULES])
    run_date = pd.Timestamp(RUN_DATE).date()
    batch, result = read_and_scrub(inputs, {}, pack, run_date, scheduler)
    expected = read_batch(inputs, {})
    pd.testing.assert_frame_equal(batch.raw, expected.raw)
    pd.testing.assert_frame_equal(batch.typed, expected.typed)
    assert batch.sources == expected.sources
    pd.testing.assert_frame_equal(result.findings, scrub_batch(expected, pack, run_date).findings)


# -- errors ------------------------------------------------------------------------------------------------
def test_an_unreadable_input_fails_as_it_does_locally(tmp_path: Path, scheduler: str) -> None:
    good = split_csv(SAMPLES / "clinic_export.csv", tmp_path, 1)[0]
    bad = tmp_path / "bad.csv"
    bad.write_text(f"claim_id,line_no,patient_id\nC1,1,{SENTINEL}\n", encoding="utf-8")
    local, dask = scrub_both([good, bad, tmp_path / "missing.csv"], tmp_path, scheduler)
    assert (dask.returncode, dask.stderr) == (local.returncode, local.stderr)
    assert dask.returncode == 2 and len(dask.stderr.splitlines()) == 1
    assert "bad.csv: missing required column(s)" in dask.stderr and SENTINEL not in dask.stderr
    assert not (tmp_path / "dask").exists()


def test_an_unreachable_scheduler_exits_2_quickly(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = scrub([SAMPLES / "clinic_export.csv"], tmp_path / "out", "--engine", "dask",
                   "--scheduler", f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - started < 30
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"scrubber: error: cannot connect to the Dask scheduler at tcp://127.0.0.1:{port} within 10 s "
        "(OSError); is it running and reachable?"
    ]
    assert not (tmp_path / "out").exists()


def test_without_dask_installed_the_engine_says_what_to_install(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['distributed'] = sys.modules['dask'] = None; from scrubber.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", blocked, "run", str(SAMPLES / "clinic_export.csv"), "--out", str(tmp_path / "out"),
         "--engine", "dask"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "scrubber: error: --engine dask needs Dask, which is not installed: pip install 'scrubber[dask]'"
    ]
    assert not (tmp_path / "out").exists()

"""Shared fixtures: the bundled rule pack, a CLI runner, sample paths, and export writers."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scrubber.loader import BUNDLED_RULES, RulePack, load_pack

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"

# Tests start CLI runs from several threads at once. CPython starts a subprocess with vfork() and,
# in later 3.11 releases (gh-104372), lets other threads run until the child has exec'd. One CI run
# saw that exec fail with EFAULT ("[Errno 14] Bad address: .../python"), not reproduced in 3 reruns;
# the shared address space is the likely cause. A plain fork shares nothing to race on; the flag
# is CPython's failsafe for vfork trouble (gh-91401).
subprocess._USE_VFORK = False  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def pack() -> RulePack:
    return load_pack([BUNDLED_RULES])


@pytest.fixture(scope="session")
def baseline(pack: RulePack) -> dict[str, Any]:
    return dict(pack.baseline)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str] | None = None) -> Path:
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})
    return path


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `scrubber` entry point in a subprocess, as a pipeline would."""
    return subprocess.run(
        [sys.executable, "-m", "scrubber", *args], capture_output=True, text=True, env=env, timeout=600
    )


def read_findings(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "findings.jsonl").read_text(encoding="utf-8").splitlines()]

"""Generate a large claim export with the bundled sample's realistic mix, for the benchmark.

The sample (`samples/clinic_export.csv`, 348 lines from `samples/generate.py`) is a curated night of a
PT clinic that also runs diabetes, asthma and COPD education: about two thirds of its lines are
clean and every rule of the pack is hit. This script tiles it to N lines. Each copy gets its own
claim ids, patient ids and session ids, so everything that spans lines (sessions, duplicates, day
totals, same-day codes) stays exactly as in the sample within the copy and never mixes across
copies; charges vary a little per copy so amounts are not all identical. Synthetic throughout.

    python benchmarks/make_export.py --lines 100000 --out benchmarks/data/export_100k.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "clinic_export.csv"


def make_export(lines: int, seed: int = 7, first_copy: int = 0) -> pd.DataFrame:
    """`lines` claim lines (all text), the sample tiled with fresh ids per copy (numbered from
    `first_copy`)."""
    sample = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    copies = -(-lines // len(sample))
    copy = np.repeat(np.arange(first_copy, first_copy + copies), len(sample))[:lines]
    frame = pd.concat([sample] * copies, ignore_index=True).iloc[:lines].copy()
    suffix = pd.Series(copy, index=frame.index).astype(str).radd("-")
    for column in ("claim_id", "patient_id", "session_id"):
        present = frame[column] != ""
        frame.loc[present, column] = frame.loc[present, column] + suffix[present]
    charge = pd.to_numeric(frame["charge"].str.replace(r"[$,]", "", regex=True), errors="coerce")
    jitter = np.random.default_rng(seed).uniform(0.9, 1.1, lines)
    varied = (charge * jitter).round(2).map(lambda v: f"{v:.2f}")
    frame["charge"] = varied.where(charge.notna(), frame["charge"])
    return frame


def write_export(lines: int, path: Path, seed: int = 7, block_copies: int = 3_000) -> None:
    """Write `lines` lines to a CSV a block of copies at a time (10M lines in bounded memory)."""
    per_block = block_copies * len(pd.read_csv(SAMPLE, dtype=str, keep_default_na=False))
    with path.open("w", encoding="utf-8", newline="") as handle:
        for block, start in enumerate(range(0, lines, per_block)):
            frame = make_export(min(per_block, lines - start), seed + block, first_copy=block * block_copies)
            frame.to_csv(handle, index=False, header=block == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_export(args.lines, args.out, args.seed)


if __name__ == "__main__":
    main()

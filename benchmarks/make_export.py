"""Generate a large synthetic claim export with the sample's columns and a realistic code mix.

Vectorised with numpy so a million lines take seconds. Synthetic throughout: patient ids are
counters, NPIs are valid check-digit numbers drawn from a small pool of providers, and about a
third of the lines carry one of the defects the rule pack looks for (missing order, wrong group
code, physician rendering education, bad units, stale filing, missing GP ...).

    python benchmarks/make_export.py --lines 100000 --out benchmarks/data/export_100k.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def npi_with_check_digit(base9: int) -> str:
    """Append the CMS check digit (Luhn over "80840" + the 9 digits) to a 9-digit base."""
    digits = [int(c) for c in f"{base9:09d}"]
    total = 24
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return f"{base9:09d}{(10 - total % 10) % 10}"


# (cpt, weight, unit minutes or 0, typical units)
CODES = [
    ("97110", 22, 15, 2), ("97140", 12, 15, 1), ("97530", 10, 15, 2), ("97112", 8, 15, 1),
    ("97161", 2, 0, 1), ("97162", 2, 0, 1), ("97164", 2, 0, 1),
    ("98960", 10, 30, 1), ("98961", 8, 30, 1), ("98962", 5, 30, 1),
    ("G0108", 3, 30, 1), ("G0109", 3, 30, 2), ("99213", 6, 0, 1), ("99078", 1, 0, 1),
    ("98975", 1, 0, 1), ("98977", 2, 0, 1),
]
DX = ["E11.9", "E11.65", "E10.9", "I10", "J45.40", "J44.9", "I50.9", "N18.3", "E66.9",
      "M54.50", "M25.561", "M17.11", "S83.511A", "Z71.3", "E11", "R69", "XYZ"]
DX_P = np.array([14, 6, 3, 8, 6, 5, 2, 2, 2, 12, 10, 8, 6, 1, 0.3, 0.3, 0.2])
TAXONOMIES = ["163WD0400X", "225100000X", "225100000X", "133V00000X", "207Q00000X", "363L00000X", "2279C0205X"]
TAX_P = np.array([30, 35, 10, 10, 8, 4, 3])
PAYERS = [("medicare", "MCR-JE"), ("medicare_advantage", "HUMANA-MA"), ("medicaid", "MD-MEDICAID"),
          ("commercial", "UHC"), ("commercial", "AETNA"), ("commercial", "CIGNA")]
PAYER_P = np.array([25, 15, 15, 20, 15, 10])


def make_export(lines: int, seed: int = 7) -> pd.DataFrame:
    """A DataFrame of `lines` synthetic claim lines in the contract's columns (all text)."""
    rng = np.random.default_rng(seed)
    weights = np.array([c[1] for c in CODES], dtype=float)
    code_idx = rng.choice(len(CODES), size=lines, p=weights / weights.sum())
    cpt = np.array([c[0] for c in CODES])[code_idx]
    unit_minutes = np.array([c[2] for c in CODES])[code_idx]
    units = np.array([c[3] for c in CODES])[code_idx] + (rng.random(lines) < 0.1)
    minutes = np.where(unit_minutes > 0, units * unit_minutes + rng.integers(-3, 8, lines), 0)
    payer_idx = rng.choice(len(PAYERS), size=lines, p=PAYER_P / PAYER_P.sum())
    dx1 = rng.choice(DX, size=lines, p=DX_P / DX_P.sum())
    dx2 = np.where(rng.random(lines) < 0.3, rng.choice(DX[:9], size=lines), "")
    dx = np.where(dx2 != "", np.char.add(np.char.add(dx1.astype(str), ";"), dx2.astype(str)), dx1)
    dx = np.where(rng.random(lines) < 0.02, "", dx)
    providers = np.array([npi_with_check_digit(123_456_700 + i) for i in range(40)])
    rendering = rng.choice(providers, size=lines)
    rendering = np.where(rng.random(lines) < 0.005, "1234567890", rendering)  # bad check digit
    taxonomy = rng.choice(TAXONOMIES, size=lines, p=TAX_P / TAX_P.sum())
    referring = np.where(rng.random(lines) < 0.1, "", rng.choice(providers[:10], size=lines))
    day = rng.integers(0, 30, lines)
    service = pd.to_datetime("2026-09-01") + pd.to_timedelta(day, unit="D")
    lag = np.where(rng.random(lines) < 0.03, rng.integers(100, 400, lines), rng.integers(1, 20, lines))
    submitted = service + pd.to_timedelta(lag, unit="D")
    order = service - pd.to_timedelta(rng.integers(1, 120, lines), unit="D")
    patient = rng.integers(1, max(2, lines // 6), lines)
    is_group = np.isin(cpt, ["98961", "98962", "G0109"])
    session = np.where(is_group, np.char.add("S", (day * 10 + rng.integers(0, 6, lines)).astype(str)), "")
    group_size = np.where(cpt == "98960", "1", np.where(cpt == "98961", rng.integers(2, 5, lines).astype(str),
                          np.where(cpt == "98962", rng.integers(4, 10, lines).astype(str), "")))
    mods = np.where(np.char.startswith(cpt, "97"), np.where(rng.random(lines) < 0.9, "GP", ""), "")
    mods = np.where(rng.random(lines) < 0.04, np.char.add(mods, ";95"), mods)
    pos = np.where(rng.random(lines) < 0.08, "02", "11")
    curriculum = np.where(np.isin(cpt, ["98960", "98961", "98962"]) & (rng.random(lines) < 0.95), "ADA-DSMES-2024", "")
    charge = np.round(rng.uniform(25, 180, lines), 2).astype(str)
    claim = np.char.add("C", (np.arange(lines) // 3 + 100000).astype(str))
    frame = pd.DataFrame({
        "claim_id": claim,
        "line_no": (np.arange(lines) % 3 + 1).astype(str),
        "patient_id": np.char.add("P", patient.astype(str)),
        "payer_type": np.array([p[0] for p in PAYERS])[payer_idx],
        "payer_id": np.array([p[1] for p in PAYERS])[payer_idx],
        "service_date": service.strftime("%Y-%m-%d"),
        "submission_date": submitted.strftime("%Y-%m-%d"),
        "cpt": cpt,
        "modifiers": mods,
        "units": units.astype(str),
        "minutes": np.where(unit_minutes > 0, minutes.astype(str), ""),
        "dx_codes": dx,
        "pos": pos,
        "rendering_npi": rendering,
        "rendering_taxonomy": taxonomy,
        "billing_npi": npi_with_check_digit(155_859_879),
        "referring_npi": referring,
        "order_date": order.strftime("%Y-%m-%d"),
        "prior_auth_number": np.where(rng.random(lines) < 0.5, "PA" + pd.Series(rng.integers(10**6, 10**7, lines)).astype(str), ""),
        "session_id": session,
        "group_size": group_size,
        "curriculum_id": curriculum,
        "charge": charge,
    })
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    make_export(args.lines, args.seed).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()

"""The run's summary: counts, dollars at risk, traceability, and the exit code it implies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scrubber import __version__
from scrubber.exit_codes import ExitCode
from scrubber.loader import RulePack

FAIL_ON = {"deny": ("deny",), "at-risk": ("deny", "at-risk"), "never": ()}


def rules_version(pack: RulePack) -> str:
    """A version that changes with any rule or table: scrubber version + content hash."""
    digest = hashlib.sha256()
    for name, value in sorted(pack_hashes(pack).items()):
        digest.update(f"{name}={value}\n".encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def pack_hashes(pack: RulePack) -> dict[str, str]:
    hashes = {f"rule:{r.id}": r.content_hash for r in pack.rules}
    hashes.update(pack.reference.hashes)
    return hashes


EXPECTED_PAYMENT = "expected_payment.csv"
ESTIMATE_NOTE = (
    "flagged lines without a charge: expected payment per unit for the payer type and code "
    f"(rules/tables/{EXPECTED_PAYMENT}) times units; UNVERIFIED estimates, not payer fee schedules"
)


@dataclass(frozen=True)
class LineDollars:
    """What each line is worth: its charge, or, where it has none, an estimated range."""

    charge: np.ndarray  # float, NaN where the line has no (readable) charge
    low: np.ndarray  # float, NaN where there is a charge or no estimate
    high: np.ndarray

    @property
    def estimated(self) -> np.ndarray:
        return ~np.isnan(self.low)


def line_dollars(typed: pd.DataFrame, expected_payment: list[dict[str, str]]) -> LineDollars:
    """Charge where present; else per-unit expected payment for (payer type, code) times units."""
    charge = typed["charge"].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    low = np.full(len(typed), np.nan)
    high = np.full(len(typed), np.nan)
    rates = {(r["payer_type"], r["cpt"].upper()): sorted((float(r["per_unit_low"]), float(r["per_unit_high"])))
             for r in expected_payment}
    units = typed["units"].astype("Float64").to_numpy(dtype=float, na_value=np.nan).clip(min=0)
    use = np.flatnonzero(np.isnan(charge) & ~np.isnan(units))  # only these lines need a rate (of millions)
    if rates and len(use):
        keys = (typed["payer_type"].take(use).astype("string").fillna("") + "\0"
                + typed["cpt"].take(use).astype("string").fillna(""))
        codes, uniques = pd.factorize(keys.to_numpy(dtype=object))
        per_unit = np.array([rates.get(tuple(k.split("\0", 1)), (np.nan, np.nan)) for k in uniques] or
                            np.empty((0, 2)), dtype=float).reshape(-1, 2)
        low[use] = per_unit[codes, 0] * units[use]
        high[use] = per_unit[codes, 1] * units[use]
    return LineDollars(charge, low, high)


def payer_codes(typed: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each line's payer type as a code into the names; a line without one is "unknown" (last)."""
    codes, payers = pd.factorize(typed["payer_type"])
    names = [*(str(p) for p in payers), "unknown"]
    return np.where(codes < 0, len(names) - 1, codes), names


@dataclass
class Report:
    """Counts of one run; owns the exit code and the one-line summary."""

    lines: int
    status_counts: dict[str, int]
    fail_on: str
    findings_at_or_above: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FINDINGS if self.findings_at_or_above else ExitCode.OK

    def __str__(self) -> str:
        c = self.status_counts
        return (
            f"{self.lines:,} line{'s' if self.lines != 1 else ''} scrubbed: "
            f"{c.get('deny', 0):,} deny, {c.get('at-risk', 0):,} at-risk, {c.get('clean', 0):,} clean"
        )


def build_summary(
    status: pd.Categorical,
    findings: pd.DataFrame,
    typed: pd.DataFrame,
    pack: RulePack,
    inputs: list[dict[str, Any]],
    fail_on: str,
    run: dict[str, Any],
    line_money: LineDollars,
) -> tuple[dict[str, Any], Report]:
    counts = {s: int((status == s).sum()) for s in ("clean", "at-risk", "deny")}
    charge = typed["charge"].astype("Float64")
    flagged = status != "clean"

    def dollars(mask: Any) -> float:
        return round(float(charge[mask].sum(skipna=True)), 2)

    def estimate(mask: Any) -> dict[str, float]:
        return {"low": round(float(np.nansum(line_money.low[mask])), 2),
                "high": round(float(np.nansum(line_money.high[mask])), 2)}

    by_payer: dict[str, Any] = {}
    codes, names = payer_codes(typed)
    for k in sorted(range(len(names)), key=lambda k: names[k]):
        m = codes == k
        if not m.any():
            continue
        p = names[k]
        by_payer[p] = {
            "lines": int(m.sum()),
            **{s: int(((status == s) & m).sum()) for s in ("clean", "at-risk", "deny")},
            "dollars_at_risk": dollars(m & flagged),
            "estimated_dollars_at_risk": estimate(m & flagged),
        }
    failing = FAIL_ON[fail_on]
    at_or_above = int(findings["severity"].isin(failing).sum()) if len(findings) else 0
    report = Report(len(status), counts, fail_on, at_or_above)
    summary = {
        "scrubber_version": __version__,
        "run": run,
        "inputs": inputs,
        "rules": {
            "version": rules_version(pack),
            "folders": [str(d) for d in pack.dirs],
            "count": len(pack.rules),
            "hashes": dict(sorted(pack_hashes(pack).items())),
        },
        "lines": {"total": len(status), **counts},
        "findings": len(findings),
        "by_status": counts,
        "by_cause": _counts(findings, "cause"),
        "by_rule": _counts(findings, "rule_id"),
        "by_severity": _counts(findings, "severity"),
        "by_payer": by_payer,
        "dollars_at_risk": {
            "deny": dollars(status == "deny"),
            "at-risk": dollars(status == "at-risk"),
            "total": dollars(flagged),
            "flagged_lines_without_charge": int((flagged & charge.isna().to_numpy()).sum()),
            "estimated": {
                **estimate(flagged),
                "deny": estimate(status == "deny"),
                "at-risk": estimate(status == "at-risk"),
                "lines": int((flagged & line_money.estimated).sum()),
                "basis": ESTIMATE_NOTE,
            },
            "flagged_lines_without_charge_or_estimate": int(
                (flagged & charge.isna().to_numpy() & ~line_money.estimated).sum()),
        },
        "fail_on": fail_on,
        "findings_at_or_above_fail_on": at_or_above,
        "exit_code": int(report.exit_code),
    }
    return summary, report


def _counts(findings: pd.DataFrame, column: str) -> dict[str, int]:
    if not len(findings):
        return {}
    counts = findings[column].value_counts()
    counts = counts[counts > 0]  # a categorical column counts its unused values too
    return {str(k): int(v) for k, v in sorted(counts.items())}


def selection_text(run: dict[str, Any]) -> str:
    """The --select/--ignore a run was given, as the reports show them ("; --select group_code")."""
    return "".join(f"; --{option} {','.join(run[option])}" for option in ("select", "ignore") if run.get(option))

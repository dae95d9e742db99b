"""summary.md: the run in Markdown for CI job pages (and $GITHUB_STEP_SUMMARY).

Counts, dollars at risk, the causes and rules that fired, and what was scrubbed with which rule
pack. Built from summary.json's figures only: no line data, no patient identifiers.
"""

from __future__ import annotations

import re
from typing import Any

from scrubber.report import selection_text

TOP_RULES = 10
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def md(value: Any) -> str:
    """Text that Markdown shows as written (no links, markup or table breaks)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _range(low: float, high: float) -> str:
    return _money(low) if round(low, 2) == round(high, 2) else f"{_money(low)}–{_money(high)}"


def render_markdown(summary: dict[str, Any], rule_info: dict[str, tuple[str, str]]) -> str:
    """rule_info: rule id -> (cause, denial code)."""
    lines = summary["lines"]
    total = lines["total"]
    pct = (lambda n: f"{100 * n / total:.1f}%") if total else (lambda n: "–")
    fail_on, code = summary["fail_on"], summary["exit_code"]
    if fail_on == "never":
        verdict = "✅ **exit 0**: `--fail-on never`, findings never fail the run"
    elif code:
        n = summary["findings_at_or_above_fail_on"]
        verdict = f"❌ **exit {code}**: {n:,} finding{'s' if n != 1 else ''} at or above `--fail-on {fail_on}`"
    else:
        verdict = f"✅ **exit 0**: nothing at or above `--fail-on {fail_on}`"
    money = summary["dollars_at_risk"]
    est = money.get("estimated")
    inputs = ", ".join(f"{md(i['file'])} ({i['lines']:,} line{'s' if i['lines'] != 1 else ''})" for i in summary["inputs"])
    out = [
        f"## Claim scrub: {total:,} line{'s' if total != 1 else ''}, {lines['deny']:,} deny, {lines['at-risk']:,} at-risk, {lines['clean']:,} clean",
        "",
        verdict,
        "",
        "| status | lines | share |",
        "|---|---:|---:|",
        *(f"| {s} | {lines[s]:,} | {pct(lines[s])} |" for s in ("deny", "at-risk", "clean")),
        "",
        f"**Dollars at risk** (charges on flagged lines): **{_money(money['total'])}** "
        f"(deny {_money(money['deny'])}, at-risk {_money(money['at-risk'])})",
    ]
    if est and est.get("lines"):
        out.append(f"plus an **estimated {_range(est['low'], est['high'])}** on {est['lines']:,} flagged "
                   f"line{'s' if est['lines'] != 1 else ''} without a charge (UNVERIFIED expected-payment table, "
                   "`rules/tables/expected_payment.csv`)")
    missing = money.get("flagged_lines_without_charge_or_estimate", 0)
    if missing:
        out.append(f"and {missing:,} flagged line{'s' if missing != 1 else ''} with neither a charge nor an estimate.")
    by_cause = summary["by_cause"]
    if by_cause:
        out += ["", "### Findings by cause", "", "| cause | findings |", "|---|---:|",
                *(f"| {md(c)} | {n:,} |" for c, n in sorted(by_cause.items(), key=lambda kv: (-kv[1], kv[0])))]
        top = sorted(summary["by_rule"].items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_RULES]
        out += ["", f"### Top {len(top)} rules", "", "| rule | cause | denial code | findings |", "|---|---|---|---:|",
                *(f"| {md(r)} | {md(rule_info.get(r, ('', ''))[0])} | {md(rule_info.get(r, ('', ''))[1])} | {n:,} |"
                  for r, n in top)]
        payers = summary["by_payer"]
        out += ["", "### By payer type", "", "| payer type | lines | deny | at-risk | dollars at risk | estimated |",
                "|---|---:|---:|---:|---:|---:|"]
        for p, row in payers.items():
            e = row.get("estimated_dollars_at_risk", {"low": 0.0, "high": 0.0})
            out.append(f"| {md(p)} | {row['lines']:,} | {row['deny']:,} | {row['at-risk']:,} | "
                       f"{_money(row['dollars_at_risk'])} | {_range(e['low'], e['high']) if e['high'] else '–'} |")
    run = summary["run"]
    chosen = md(selection_text(summary["run"]))
    out += ["", f"Input: {inputs}. Rule pack {md(summary['rules']['version'])} ({summary['rules']['count']} rules{chosen}); "
                f"run {md(run.get('started', ''))} in {run.get('seconds', '')} s. "
                "Details: `report.html`, `findings.jsonl`, `junit.xml` in the output folder.", ""]
    return "\n".join(out)

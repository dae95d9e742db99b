"""report.html: one self-contained page a billing manager opens from disk.

Summary figures, four charts drawn here as inline SVG, and the findings on flagged lines as a
table that filters, sorts and pages in the browser. Nothing is fetched: no CDN, no server, and a
Content-Security-Policy that forbids any request. The table's data is embedded once as JSON
(columns dictionary-encoded, so 100k findings stay a few MB) and every value reaches the page as
text (`textContent`), never as markup: a cell such as `<img onerror=...>` in an export is shown,
not run. Values written here in Python go through `html.escape`.

Patient identifiers are not shown at all (the annotated file has them).
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scrubber.report import LineDollars, payer_codes, selection_text

STATUS_ORDER = ("deny", "at-risk", "clean")
TOP_RULES = 15
# The table holds the first findings up to this many (in line order): beyond it the page would be
# too large to open; findings.jsonl and the annotated file have every one.
TABLE_ROWS = 100_000


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def money(value: float) -> str:
    return f"${value:,.2f}"


def money_range(low: float, high: float) -> str:
    return money(low) if round(low, 2) == round(high, 2) else f"{money(low)}\u2013{money(high)}"


# -- charts (inline SVG) ------------------------------------------------------------------------
Segment = tuple[float, str, str]  # value, css class, tooltip


def hbar_chart(chart_id: str, title: str, rows: Sequence[tuple[str, str, Sequence[Segment], str]],
               legend: Sequence[tuple[str, str]]) -> str:
    """Horizontal stacked bars: rows of (label, label tooltip, segments, value text)."""
    if not rows:
        return _empty_chart(chart_id, title)
    label_w, bar_w, value_w, row_h = 220, 320, 170, 22
    top = 28
    height = top + row_h * len(rows) + 8
    total_max = max(sum(v for v, _, _ in segs) for _, _, segs, _ in rows) or 1.0
    parts = [_legend(legend, 0)]
    for i, (label, tip, segs, value_text) in enumerate(rows):
        y = top + i * row_h
        parts.append(f'<text class="lbl" x="{label_w - 6}" y="{y + 15}" text-anchor="end" data-key="{esc(label)}">'
                     f'<title>{esc(tip)}</title>{esc(_clip(label, 34))}</text>')
        x = float(label_w)
        for value, css, seg_tip in segs:
            if value <= 0:
                continue
            w = max(bar_w * value / total_max, 1.0)
            parts.append(f'<rect class="bar {css}" x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}">'
                         f'<title>{esc(seg_tip)}</title></rect>')
            x += w
        parts.append(f'<text class="val" x="{x + 5:.1f}" y="{y + 15}">{esc(value_text)}</text>')
    width = label_w + bar_w + value_w
    return _figure(chart_id, title, width, height, "".join(parts))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _legend(items: Sequence[tuple[str, str]], x0: float) -> str:
    out, x = [], x0
    for label, css in items:
        out.append(f'<rect class="{css}" x="{x:.0f}" y="6" width="11" height="11"/>'
                   f'<text class="lgd" x="{x + 15:.0f}" y="16">{esc(label)}</text>')
        x += 22 + 7 * len(label)
    return "".join(out)


def _figure(chart_id: str, title: str, width: float, height: float, body: str) -> str:
    return (f'<figure class="chart" id="{esc(chart_id)}"><figcaption>{esc(title)}</figcaption>'
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
            f'aria-label="{esc(title)}">{body}</svg></figure>')


def _empty_chart(chart_id: str, title: str) -> str:
    return (f'<figure class="chart" id="{esc(chart_id)}"><figcaption>{esc(title)}</figcaption>'
            f'<p class="empty">Nothing to show: no line was flagged.</p></figure>')


def date_chart(chart_id: str, title: str, dates: np.ndarray, status: pd.Categorical) -> str:
    """Stacked columns of line status per service day, week or month (only periods with lines)."""
    # Work on the distinct days (a few hundred), then count lines per bucket and status with one
    # bincount: a 10M-line run never sorts or copies its dates.
    day_of_line, days = pd.factorize(dates.astype("datetime64[D]"), use_na_sentinel=True)
    known = day_of_line >= 0
    if not known.any():
        return _empty_chart(chart_id, title)
    unknown = int((~known).sum())
    days = np.asarray(days, dtype="datetime64[D]")
    if len(days) <= 62:
        keys, unit = days, "day"
    else:
        # Weeks start on Monday (1970-01-01 was a Thursday: shift by 3 days).
        weeks = ((days.astype(np.int64) + 3) // 7 * 7 - 3).astype("datetime64[D]")
        if len(np.unique(weeks)) <= 80:
            keys, unit = weeks, "week of"
        else:
            months = days.astype("datetime64[M]")
            keys, unit = (months, "month") if len(np.unique(months)) <= 120 else (days.astype("datetime64[Y]"), "year")
    buckets, bucket_of_day = np.unique(keys, return_inverse=True)
    status_of_line = pd.Categorical(status, categories=STATUS_ORDER).codes
    cell = bucket_of_day[day_of_line[known]] * len(STATUS_ORDER) + status_of_line[known]
    table = np.bincount(cell, minlength=len(buckets) * len(STATUS_ORDER)).reshape(len(buckets), len(STATUS_ORDER))
    counts = {s: table[:, i] for i, s in enumerate(STATUS_ORDER)}
    totals = sum(counts.values())
    n = len(buckets)
    left, plot_w, plot_h, top = 46, 640, 190, 28
    col_w = plot_w / n
    peak = int(totals.max()) or 1
    parts = [_legend([("deny", "deny"), ("at-risk", "atrisk"), ("clean", "clean")], left)]
    for tick in (0, peak // 2, peak):
        y = top + plot_h - plot_h * tick / peak
        parts.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick:,}</text>')
    label_every = max(1, int(np.ceil(n / 8)))
    for i, bucket in enumerate(buckets):
        x = left + i * col_w
        y = top + plot_h
        label = str(bucket)
        for s, css in (("clean", "clean"), ("at-risk", "atrisk"), ("deny", "deny")):
            v = int(counts[s][i])
            if not v:
                continue
            h = plot_h * v / peak
            y -= h
            parts.append(f'<rect class="bar {css}" x="{x + col_w * 0.1:.1f}" y="{y:.1f}" '
                         f'width="{max(col_w * 0.8, 1):.1f}" height="{h:.1f}">'
                         f'<title>{esc(f"{unit} {label}: {v:,} {s}")}</title></rect>')
        if i % label_every == 0:
            parts.append(f'<text class="tick" x="{x + col_w / 2:.1f}" y="{top + plot_h + 14}" '
                         f'text-anchor="middle">{esc(label)}</text>')
    note = f" ({unknown:,} line{'s' if unknown != 1 else ''} without a readable service date not shown)" if unknown else ""
    return _figure(chart_id, f"{title}, by {unit.split()[0]}{note}", left + plot_w + 40, top + plot_h + 22, "".join(parts))


# -- the page -----------------------------------------------------------------------------------
def _encoded(values: pd.Series | np.ndarray) -> dict[str, Any]:
    """A column as distinct values plus an index per row (-1 for missing)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return {"v": [str(u) for u in np.asarray(uniques, dtype=object).tolist()], "c": codes.tolist()}


def _cents(values: np.ndarray) -> list[int | None]:
    """Dollar amounts as whole cents (integers encode several times faster than floats)."""
    missing = np.isnan(values)
    rounded = np.round(np.where(missing, 0.0, values) * 100)
    huge = np.abs(rounded) >= 2.0**62  # a charge of 1e20 is read as written: past int64 as Python ints
    cents = np.where(huge, 0.0, rounded).astype(np.int64).astype(object)
    cents[huge] = [int(v) for v in rounded[huge]]
    cents[missing] = None
    return cents.tolist()


def _taken(column: pd.Series, rows: np.ndarray) -> pd.Series:
    return column.take(rows).reset_index(drop=True)


def table_data(findings: pd.DataFrame, typed: pd.DataFrame, status: pd.Categorical, dollars: LineDollars) -> dict[str, Any]:
    """The findings on flagged lines, one row each, as columns for the page's script."""
    rows = findings["row"].to_numpy(dtype=np.int64)
    dates = typed["service_date"].to_numpy()[rows].astype("datetime64[D]")
    date_codes, date_values = pd.factorize(dates, use_na_sentinel=True)
    line_no = findings["line_no"].astype("Int64")
    return {
        "n": len(findings),
        "claim": _encoded(findings["claim_id"]),
        "line_no": line_no.astype(object).where(line_no.notna(), None).tolist(),
        "status": _encoded(np.asarray(status[rows], dtype=object)),
        "severity": _encoded(findings["severity"]),
        "cause": _encoded(findings["cause"]),
        "rule": _encoded(findings["rule_id"]),
        "carc": _encoded(findings["carc"]),
        "payer": _encoded(_taken(typed["payer_type"], rows)),
        "payer_id": _encoded(_taken(typed["payer_id"], rows)),
        "date": {"v": [str(d) for d in np.asarray(date_values).astype("datetime64[D]")], "c": date_codes.tolist()},
        "cpt": _encoded(_taken(typed["cpt"], rows)),
        "message": _encoded(findings["message"]),
        "fix": _encoded(findings["fix"]),
        "charge": _cents(dollars.charge[rows]),
        "est_low": _cents(dollars.low[rows]),
        "est_high": _cents(dollars.high[rows]),
    }


def _script_json(data: Any) -> str:
    """JSON safe inside <script>: no `<`, `>` or `&` can end the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _by_severity_rows(findings: pd.DataFrame, column: str, label_tip: Callable[[str], str],
                      limit: int | None = None) -> list[tuple[str, str, list[Segment], str]]:
    if not len(findings):
        return []
    codes, keys = pd.factorize(findings[column])
    deny = np.bincount(codes, weights=(findings["severity"] == "deny").to_numpy(dtype=float), minlength=len(keys))
    total = np.bincount(codes, minlength=len(keys))
    order = sorted(range(len(keys)), key=lambda k: (-total[k], -deny[k], str(keys[k])))[:limit]
    out = []
    for k in order:
        key, d = str(keys[k]), int(deny[k])
        a = int(total[k]) - d
        out.append((key, label_tip(key),
                    [(d, "deny", f"{key}: {d:,} deny"), (a, "atrisk", f"{key}: {a:,} at-risk")], f"{d + a:,}"))
    return out


def _payer_rows(typed: pd.DataFrame, status: pd.Categorical, dollars: LineDollars) -> list[tuple[str, str, list[Segment], str]]:
    codes, payers = payer_codes(typed)
    n = len(payers)
    charge = np.nan_to_num(dollars.charge)
    flagged = status != "clean"

    def total(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes[mask], weights=weights[mask], minlength=n)

    deny, risk = total(charge, status == "deny"), total(charge, status == "at-risk")
    low, high = total(np.nan_to_num(dollars.low), flagged), total(np.nan_to_num(dollars.high), flagged)
    has_flagged = np.bincount(codes[flagged], minlength=n) > 0
    rows = []
    for k in sorted(np.flatnonzero(has_flagged).tolist(), key=lambda k: (-(deny[k] + risk[k] + low[k]), str(payers[k]))):
        p = str(payers[k])
        d, r, el, eh = float(deny[k]), float(risk[k]), float(low[k]), float(high[k])
        text = money(d + r) + (f" + est. {money_range(el, eh)}" if eh > 0 else "")
        rows.append((p, p, [(d, "deny", f"{p}: {money(d)} on deny lines"),
                            (r, "atrisk", f"{p}: {money(r)} on at-risk lines"),
                            (el, "est", f"{p}: estimated {money_range(el, eh)} on lines without a charge "
                                        "(UNVERIFIED expected payment)")], text))
    return rows


def render_html(summary: dict[str, Any], findings: pd.DataFrame, typed: pd.DataFrame, status: pd.Categorical,
                dollars: LineDollars, rule_names: dict[str, str]) -> str:
    lines = summary["lines"]
    money_block = summary["dollars_at_risk"]
    est = money_block.get("estimated", {"low": 0.0, "high": 0.0, "lines": 0})
    total = max(lines["total"], 1)
    inputs = ", ".join(f"{i['file']} ({i['lines']:,} lines, sha256 {i['sha256'][:12]})" for i in summary["inputs"])
    run = summary["run"]
    rules = summary["rules"]
    verdict_fail = summary["exit_code"] != 0
    verdict = (f"Exit {summary['exit_code']}: {summary['findings_at_or_above_fail_on']:,} finding"
               f"{'s' if summary['findings_at_or_above_fail_on'] != 1 else ''} at or above --fail-on {summary['fail_on']}"
               if summary["fail_on"] != "never" else "Exit 0: --fail-on never (the run never fails on findings)")
    if not verdict_fail and summary["fail_on"] != "never":
        verdict = f"Exit 0: nothing at or above --fail-on {summary['fail_on']}"
    if not verdict_fail and lines["deny"] + lines["at-risk"]:
        verdict += f"; but {lines['deny']:,} line(s) would be denied and {lines['at-risk']:,} are at risk"

    def card(css: str, label: str, value: str, sub: str = "") -> str:
        return (f'<div class="card {css}"><div class="k">{esc(label)}</div><div class="v">{esc(value)}</div>'
                f'<div class="s">{esc(sub)}</div></div>')

    pct = lambda n: f"{100 * n / total:.1f}% of lines"  # noqa: E731
    cards = "".join([
        card("", "Lines", f"{lines['total']:,}", f"{summary['findings']:,} findings"),
        card("clean", "Clean", f"{lines['clean']:,}", pct(lines["clean"])),
        card("atrisk", "At-risk", f"{lines['at-risk']:,}", pct(lines["at-risk"])),
        card("deny", "Deny", f"{lines['deny']:,}", pct(lines["deny"])),
        card("money", "Dollars at risk (charges)", money(money_block["total"]),
             f"deny {money(money_block['deny'])} \u00b7 at-risk {money(money_block['at-risk'])}"),
        card("est", "Estimated, lines without a charge", money_range(est["low"], est["high"]),
             f"{est['lines']:,} line{'s' if est['lines'] != 1 else ''}; UNVERIFIED expected-payment table"
             + (f"; {money_block.get('flagged_lines_without_charge_or_estimate', 0):,} with no estimate"
                if money_block.get("flagged_lines_without_charge_or_estimate") else "")),
    ])
    sev_legend = [("deny", "deny"), ("at-risk", "atrisk")]
    charts = "".join([
        hbar_chart("chart-cause", "Findings by cause", _by_severity_rows(findings, "cause", lambda k: k), sev_legend),
        hbar_chart("chart-payer", "Dollars at risk by payer type", _payer_rows(typed, status, dollars),
                   [*sev_legend, ("estimate (UNVERIFIED)", "est")]),
        hbar_chart("chart-rules", f"Top {TOP_RULES} rules by findings",
                   _by_severity_rows(findings, "rule_id", lambda k: f"{k}: {rule_names.get(k, '')}", TOP_RULES), sev_legend),
        date_chart("chart-dates", "Line status by service date", typed["service_date"].to_numpy(), status),
    ])
    data = _script_json(table_data(findings.iloc[:TABLE_ROWS], typed, status, dollars))
    table_note = (f"The table lists the first {TABLE_ROWS:,} of {len(findings):,} findings, in line order; "
                  "findings.jsonl and the annotated file in this folder have every one."
                  if len(findings) > TABLE_ROWS else "")
    title = f"Claim scrub report \u2013 {', '.join(i['file'] for i in summary['inputs'])}"
    return _PAGE.format(
        title=esc(title),
        h1=esc(title),
        inputs=esc(inputs),
        started=esc(run.get("started", "")),
        seconds=esc(run.get("seconds", "")),
        run_date=esc(run.get("run_date", "")),
        rules_version=esc(rules["version"]),
        rules_count=esc(f"{rules['count']} rules{selection_text(run)}"),
        scrubber_version=esc(summary["scrubber_version"]),
        verdict=esc(verdict),
        # Green only when nothing was found: an exit 0 under --fail-on never or at-risk can hide deny lines.
        verdict_css="fail" if verdict_fail else ("warn" if lines["deny"] + lines["at-risk"] else "pass"),
        cards=cards,
        charts=charts,
        estimate_note=esc(money_block.get("estimated", {}).get("basis", "")),
        data=data,
        table_note=esc(table_note),
        css=_CSS,
        js=_JS,
    )


_CSS = """
:root{--deny:#c62828;--atrisk:#e08600;--clean:#2e7d32;--ink:#1d2430;--mute:#5b6472;--line:#dde1e7}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:var(--ink);margin:0;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:14px 24px}
header h1{font-size:20px;margin:0 0 6px}
header dl{display:flex;flex-wrap:wrap;gap:4px 22px;margin:0;font-size:12.5px;color:#c9d1dc}
header dt{display:inline;font-weight:600;color:#fff}header dd{display:inline;margin:0 0 0 4px}
main{padding:16px 24px;max-width:1500px}
.verdict{padding:8px 12px;border-radius:6px;font-weight:600;margin-bottom:12px}
.verdict.fail{background:#fdecea;color:var(--deny)}.verdict.pass{background:#e8f5e9;color:var(--clean)}
.verdict.warn{background:#fff4e0;color:#8a5300}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;margin-bottom:16px}
.card{background:#fff;border:1px solid var(--line);border-left:5px solid #7a8594;border-radius:6px;padding:10px 12px}
.card.clean{border-left-color:var(--clean)}.card.atrisk{border-left-color:var(--atrisk)}
.card.deny{border-left-color:var(--deny)}.card.money{border-left-color:#3f51b5}.card.est{border-left-color:#b7791f}
.card .k{font-size:12px;color:var(--mute);text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:24px;font-weight:700;margin:2px 0}.card.est .v,.card.money .v{font-size:20px}.card .s{font-size:12px;color:var(--mute)}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:12px;margin-bottom:16px}
.chart{background:#fff;border:1px solid var(--line);border-radius:6px;margin:0;padding:10px 12px}
.chart figcaption{font-weight:600;margin-bottom:4px}.chart svg{width:100%;height:auto;display:block}
.chart .empty{color:var(--mute)}
svg text{font-size:11px;fill:var(--ink)}svg .val,svg .tick{fill:var(--mute)}svg .grid{stroke:var(--line)}
svg .deny{fill:var(--deny)}svg .atrisk{fill:var(--atrisk)}svg .clean{fill:var(--clean)}svg .est{fill:url(#hatch)}
svg .bar:hover{opacity:.8}
svg.defs{position:absolute;width:0;height:0}
section.table{background:#fff;border:1px solid var(--line);border-radius:6px;padding:10px 12px}
section.table h2{font-size:16px;margin:0 0 8px}
.filters{display:flex;flex-wrap:wrap;gap:8px 14px;align-items:end;margin-bottom:8px}
.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--mute)}
.filters select,.filters input{font:inherit;padding:3px 4px;min-width:140px;max-width:280px}
.pager{display:flex;gap:6px;align-items:center;margin:8px 0;flex-wrap:wrap}
.pager button{font:inherit;padding:2px 9px}
#count{font-weight:600}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:#eef1f5;position:sticky;top:0}
th button{all:unset;cursor:pointer;font-weight:600}th button:focus-visible{outline:2px solid #3f51b5}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
td.msg{min-width:280px}td .fix{color:var(--mute);font-size:12px;margin-top:3px}td.num{text-align:right}
td .sub{font-size:11.5px;color:var(--mute)}.scroll{overflow-x:auto}
td.key,td.nowrap{white-space:nowrap}
.pill{display:inline-block;white-space:nowrap;padding:0 6px;border-radius:9px;color:#fff;font-size:11.5px}
.pill.deny{background:var(--deny)}.pill.at-risk{background:var(--atrisk)}
.note{font-size:12px;color:var(--mute);margin:8px 0 0}
"""

# The table: filters, sorting and pages over the embedded columns; every value set as text.
_JS = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("scrub-data").textContent);
  var N = D.n, PAGE_SIZES = [50, 100, 500];
  function val(col, i) { var c = D[col].c[i]; return c < 0 ? "" : D[col].v[c]; }
  // Sort rank of each distinct value of a coded column (computed once per column).
  var ranks = {};
  function rankOf(col) {
    if (!ranks[col]) {
      var v = D[col].v, order = v.map(function (_, k) { return k; });
      order.sort(function (a, b) { return v[a] < v[b] ? -1 : v[a] > v[b] ? 1 : 0; });
      var r = new Int32Array(v.length);
      order.forEach(function (k, pos) { r[k] = pos; });
      ranks[col] = r;
    }
    return ranks[col];
  }
  function amount(i) { var c = D.charge[i]; return c !== null ? c : (D.est_low[i] !== null ? D.est_low[i] : null); }
  var SEV = {"deny": 0, "at-risk": 1};
  var sorters = {
    key: function (a, b) {
      var r = rankOf("claim"), ca = D.claim.c[a], cb = D.claim.c[b];
      var x = (ca < 0 ? -1 : r[ca]) - (cb < 0 ? -1 : r[cb]);
      return x || ((D.line_no[a] === null ? -1 : D.line_no[a]) - (D.line_no[b] === null ? -1 : D.line_no[b]));
    },
    status: function (a, b) { return SEV[val("status", a)] - SEV[val("status", b)]; },
    severity: function (a, b) { return SEV[val("severity", a)] - SEV[val("severity", b)]; },
    amount: function (a, b) {
      var x = amount(a), y = amount(b);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return x - y;
    }
  };
  function sorter(col) {
    if (sorters[col]) return sorters[col];
    return function (a, b) {
      var r = rankOf(col), ca = D[col].c[a], cb = D[col].c[b];
      return (ca < 0 ? -1 : r[ca]) - (cb < 0 ? -1 : r[cb]);
    };
  }
  var state = {filters: {}, search: "", sort: null, dir: 1, page: 0, size: 100};
  var view = [];
  var filterCols = [["cause", "Cause"], ["severity", "Severity"], ["payer", "Payer type"], ["rule", "Rule"]];
  var filterBox = document.getElementById("filters");
  filterCols.forEach(function (fc) {
    var col = fc[0], counts = new Array(D[col].v.length).fill(0);
    for (var i = 0; i < N; i++) { if (D[col].c[i] >= 0) counts[D[col].c[i]]++; }
    var label = document.createElement("label");
    label.appendChild(document.createTextNode(fc[1]));
    var sel = document.createElement("select");
    sel.id = "filter-" + col;
    sel.dataset.col = col;
    var all = document.createElement("option");
    all.value = ""; all.textContent = "all (" + N.toLocaleString("en-US") + ")";
    sel.appendChild(all);
    var order = D[col].v.map(function (_, k) { return k; });
    order.sort(function (a, b) { return D[col].v[a] < D[col].v[b] ? -1 : 1; });
    order.forEach(function (k) {
      var o = document.createElement("option");
      o.value = String(k);
      o.textContent = D[col].v[k] + " (" + counts[k].toLocaleString("en-US") + ")";
      sel.appendChild(o);
    });
    sel.addEventListener("change", function () {
      if (sel.value === "") delete state.filters[col]; else state.filters[col] = Number(sel.value);
      state.page = 0; update();
    });
    label.appendChild(sel);
    filterBox.appendChild(label);
  });
  var search = document.getElementById("search");
  var searchTimer = null;
  search.addEventListener("input", function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(function () { state.search = search.value.trim().toLowerCase(); state.page = 0; update(); }, 150);
  });
  document.getElementById("reset").addEventListener("click", function () {
    state.filters = {}; state.search = ""; search.value = ""; state.page = 0;
    filterBox.querySelectorAll("select").forEach(function (s) { s.value = ""; });
    update();
  });
  var sizeSel = document.getElementById("page-size");
  PAGE_SIZES.forEach(function (s) {
    var o = document.createElement("option"); o.value = String(s); o.textContent = String(s) + " per page";
    if (s === state.size) o.selected = true;
    sizeSel.appendChild(o);
  });
  sizeSel.addEventListener("change", function () { state.size = Number(sizeSel.value); state.page = 0; render(); });
  document.querySelectorAll("#findings thead th[data-col]").forEach(function (th) {
    th.querySelector("button").addEventListener("click", function () {
      var col = th.dataset.col;
      if (state.sort === col) state.dir = -state.dir; else { state.sort = col; state.dir = 1; }
      document.querySelectorAll("#findings thead th").forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      state.page = 0; update();
    });
  });
  function matches(i, q) {
    var fields = ["claim", "message", "rule", "cpt", "payer_id", "carc", "fix"];
    for (var k = 0; k < fields.length; k++) { if (val(fields[k], i).toLowerCase().indexOf(q) >= 0) return true; }
    return (val("claim", i) + ":" + (D.line_no[i] === null ? "?" : D.line_no[i])).toLowerCase().indexOf(q) >= 0;
  }
  function update() {
    var f = state.filters, cols = Object.keys(f), q = state.search;
    view = [];
    for (var i = 0; i < N; i++) {
      var ok = true;
      for (var k = 0; k < cols.length; k++) { if (D[cols[k]].c[i] !== f[cols[k]]) { ok = false; break; } }
      if (ok && q && !matches(i, q)) ok = false;
      if (ok) view.push(i);
    }
    if (state.sort) {
      var cmp = sorter(state.sort), dir = state.dir;
      view.sort(function (a, b) { return dir * cmp(a, b) || a - b; });
    }
    render();
  }
  function cell(tr, text, css) {
    var td = document.createElement("td");
    if (css) td.className = css;
    td.textContent = text;
    tr.appendChild(td);
    return td;
  }
  function pill(tr, text) {
    var td = document.createElement("td"), s = document.createElement("span");
    s.className = "pill " + text; s.textContent = text; td.appendChild(s); tr.appendChild(td);
  }
  function money(cents) { return "$" + (cents / 100).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2}); }
  function render() {
    var pages = Math.max(1, Math.ceil(view.length / state.size));
    if (state.page >= pages) state.page = pages - 1;
    var start = state.page * state.size, end = Math.min(view.length, start + state.size);
    var body = document.createElement("tbody");
    for (var p = start; p < end; p++) {
      var i = view[p], tr = document.createElement("tr");
      cell(tr, val("claim", i) + ":" + (D.line_no[i] === null ? "?" : D.line_no[i]), "key");
      pill(tr, val("status", i));
      pill(tr, val("severity", i));
      cell(tr, val("cause", i), "nowrap");
      cell(tr, val("rule", i), "nowrap");
      cell(tr, val("carc", i), "nowrap");
      var payerTd = cell(tr, val("payer", i), "payer"), pid = val("payer_id", i);
      if (pid) { var small = document.createElement("div"); small.className = "sub"; small.textContent = pid; payerTd.appendChild(small); }
      cell(tr, val("date", i), "nowrap");
      cell(tr, val("cpt", i), "nowrap");
      var amt = D.charge[i] !== null ? money(D.charge[i])
        : D.est_low[i] !== null ? "est. " + (D.est_low[i] === D.est_high[i] ? money(D.est_low[i])
                                                : money(D.est_low[i]) + "\u2013" + money(D.est_high[i])) : "";
      var td = cell(tr, amt, "num");
      if (D.charge[i] === null && D.est_low[i] !== null) td.title = "No charge on the line: UNVERIFIED expected-payment estimate";
      var msgTd = cell(tr, val("message", i), "msg"), fix = document.createElement("div");
      fix.className = "fix"; fix.textContent = "Fix: " + val("fix", i); msgTd.appendChild(fix);
      body.appendChild(tr);
    }
    var table = document.getElementById("findings");
    table.replaceChild(body, table.tBodies[0]);
    document.getElementById("count").textContent = view.length.toLocaleString("en-US") + " of " + N.toLocaleString("en-US") + " findings";
    document.getElementById("range").textContent = view.length ? "rows " + (start + 1).toLocaleString("en-US") + "\u2013" + end.toLocaleString("en-US") : "no rows";
    document.getElementById("page").textContent = "page " + (state.page + 1) + " of " + pages;
    document.getElementById("first").disabled = document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = document.getElementById("last").disabled = state.page >= pages - 1;
    document.body.dataset.ready = "1";
  }
  function go(page) { return function () { state.page = page(); render(); }; }
  document.getElementById("first").addEventListener("click", go(function () { return 0; }));
  document.getElementById("prev").addEventListener("click", go(function () { return Math.max(0, state.page - 1); }));
  document.getElementById("next").addEventListener("click", go(function () { return state.page + 1; }));
  document.getElementById("last").addEventListener("click", go(function () { return Math.ceil(view.length / state.size) - 1; }));
  update();
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<header>
<h1>{h1}</h1>
<dl>
<div><dt>Input</dt><dd id="meta-inputs">{inputs}</dd></div>
<div><dt>Run</dt><dd id="meta-run">{started} ({seconds} s), run date {run_date}</dd></div>
<div><dt>Rule pack</dt><dd id="meta-rules">{rules_version} ({rules_count})</dd></div>
<div><dt>scrubber</dt><dd>{scrubber_version}</dd></div>
</dl>
</header>
<main>
<div class="verdict {verdict_css}" id="verdict">{verdict}</div>
<div class="cards" id="cards">{cards}</div>
<svg class="defs" aria-hidden="true" width="0" height="0"><defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3d9a4"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b7791f" stroke-width="3"/></pattern></defs></svg>
<div class="charts" id="charts">{charts}</div>
<section class="table">
<h2>Findings on flagged lines</h2>
<p class="note" id="table-note">{table_note}</p>
<div class="filters" id="filters"><label>Search<input id="search" type="search" placeholder="claim, rule, code, message"></label></div>
<div class="pager">
<button id="reset" type="button">Reset filters</button>
<span id="count"></span> &middot; <span id="range"></span> &middot; <span id="page"></span>
<button id="first" type="button" aria-label="First page">&laquo;</button>
<button id="prev" type="button" aria-label="Previous page">&lsaquo;</button>
<button id="next" type="button" aria-label="Next page">&rsaquo;</button>
<button id="last" type="button" aria-label="Last page">&raquo;</button>
<select id="page-size" aria-label="Rows per page"></select>
</div>
<div class="scroll">
<table id="findings">
<thead><tr>
<th data-col="key"><button type="button">Line</button></th>
<th data-col="status" title="The line's status: deny if any finding on it is deny, else at-risk"><button type="button">Status</button></th>
<th data-col="severity" title="This finding's severity"><button type="button">Finding</button></th>
<th data-col="cause"><button type="button">Cause</button></th>
<th data-col="rule"><button type="button">Rule</button></th>
<th data-col="carc"><button type="button">Denial code</button></th>
<th data-col="payer"><button type="button">Payer</button></th>
<th data-col="date"><button type="button">Service date</button></th>
<th data-col="cpt"><button type="button">CPT</button></th>
<th data-col="amount"><button type="button">Amount</button></th>
<th data-col="message"><button type="button">Message and fix</button></th>
</tr></thead>
<tbody></tbody>
</table>
</div>
<p class="note">Amount: the line's charge; where it has none, an estimate ({estimate_note}).
Patient identifiers are not shown here: the annotated file in this folder has every line with its patient.</p>
<noscript><p>The table needs JavaScript; the figures and charts above do not. findings.jsonl in this folder has every finding.</p></noscript>
</section>
</main>
<script type="application/json" id="scrub-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""

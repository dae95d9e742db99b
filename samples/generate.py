#!/usr/bin/env python3
"""Generate the bundled sample exports and their expected scrub results.

    python samples/generate.py [--out-dir DIR]

Writes, into DIR (default: this folder):

    clinic_export.csv                     canonical headers, ~350 lines
    alt_export.csv + alt_mapping.yaml     another practice-management layout, ~50 lines
    expected/clinic_export.expected.csv   claim_id,line_no,rule_ids per input line
    expected/alt_export.expected.csv
    README.md                             provenance and the scenario catalogue

Everything is synthetic: patient ids are sequence numbers, NPIs are random numbers given a valid
CMS check digit, and no line describes a real person. The output is deterministic (fixed seed,
stdlib only), so `tests/test_samples.py` can check that the committed files are reproduced
byte for byte.

The expected rule ids are the scenario labels this script attaches while it builds each line: what
the line was constructed to trigger. They are never obtained by running the scrubber. Every
defect is injected into an otherwise clean scenario; when one injected defect legitimately meets
several rules' conditions, the scenario lists all of them.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

SEED = 20260930
HERE = Path(__file__).resolve().parent

CANONICAL_COLUMNS = [
    "claim_id", "line_no", "patient_id", "payer_type", "payer_id", "service_date", "submission_date",
    "cpt", "modifiers", "units", "minutes", "dx_codes", "pos", "rendering_npi", "rendering_taxonomy",
    "billing_npi", "referring_npi", "referring_taxonomy", "order_date", "prior_auth_number",
    "session_id", "group_size", "curriculum_id", "charge",
]

# Billed amount per unit (synthetic fee schedule of the sample clinic).
RATES = {
    "98960": 45.00, "98961": 25.00, "98962": 18.00, "G0108": 55.00, "G0109": 16.00, "99078": 30.00,
    "97110": 38.00, "97112": 42.00, "97140": 36.00, "97530": 44.00, "97161": 125.00, "97162": 140.00,
    "97163": 160.00, "97164": 90.00, "99213": 115.00, "98975": 21.00, "98976": 55.00, "98977": 55.00,
}
TIMED_15 = ("97110", "97112", "97140", "97530")
EVALS = ("97161", "97162", "97163")
EIGHT_MINUTE_PAYERS = ("medicare", "medicare_advantage")  # rules/payers.yaml therapy_time_rule

PAYER_IDS = {
    "medicare": ["MCARE-B"],
    "medicare_advantage": ["HUMANA-MA", "UHC-MA", "AETNA-MA"],
    "medicaid": ["STATE-MCD", "MERIDIAN-MCD"],
    "commercial": ["UHC", "AETNA", "BCBS", "CIGNA"],
}

# Billable ICD-10-CM codes (FY2026 list; tests/test_samples.py re-checks every clean line).
DX = {
    "diabetes": [["E11.9"], ["E11.65", "I10"], ["E11.69", "E66.9"], ["E11.42"], ["E10.9"], ["E11.65"]],
    "asthma": [["J45.30"], ["J45.40"], ["J45.909"], ["J45.50"], ["J45.20"]],
    "copd": [["J44.9"], ["J44.1"], ["J44.9", "I10"]],
    "knee_oa": [["M17.11", "M62.81"], ["M17.12", "M62.81"]],
    "tka": [["Z47.1", "Z96.651"], ["Z47.1", "Z96.652"]],
    "back": [["M54.50"], ["M54.16", "M54.50"], ["M48.061"]],
    "shoulder": [["M75.101", "M25.511"], ["M75.121", "M25.512"]],
    "balance": [["R26.81", "M62.81"], ["R26.89"]],
    "neuro": [["I69.351", "R26.89"], ["G20.A1", "R26.81"]],
}
PT_CONDITIONS = ("knee_oa", "tka", "back", "shoulder", "balance", "neuro")
CURRICULA = {
    "diabetes": "ADA-DSMES-2024",
    "asthma": "NAEPP-ASTHMA-2020",
    "copd": "ALA-BREATHERS-2023",
    "nutrition": "ADA-MNT-CARB-2024",
}


# -- NPIs -----------------------------------------------------------------------------------------
def npi_check_digit(first9: str) -> str:
    """CMS NPI check digit: Luhn over "80840" + the first nine digits (constant 24)."""
    total = 24
    for i, ch in enumerate(reversed(first9)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def make_npi(rng: random.Random) -> str:
    first9 = "1" + "".join(str(rng.randrange(10)) for _ in range(8))
    return first9 + npi_check_digit(first9)


def corrupt_npi(npi: str) -> str:
    """The same NPI with a wrong last digit (a keying error the check digit catches)."""
    return npi[:9] + str((int(npi[9]) + 3) % 10)


@dataclass(frozen=True)
class Provider:
    key: str
    npi: str
    taxonomy: str
    role: str


def make_providers(rng: random.Random, specs: list[tuple[str, str, str]]) -> dict[str, Provider]:
    out: dict[str, Provider] = {}
    used: set[str] = set()
    for key, taxonomy, role in specs:
        npi = make_npi(rng)
        while npi in used:
            npi = make_npi(rng)
        used.add(npi)
        out[key] = Provider(key, npi, taxonomy, role)
    return out


# Real NUCC codes whose prefixes are in rules/tables/taxonomy_classes.csv (171M: an unlisted one).
CLINIC_STAFF = [
    ("GROUP", "", "billing provider (the clinic, type-2 NPI)"),
    ("PT1", "225100000X", "physical therapist"),
    ("PT2", "2251X0800X", "physical therapist, orthopedic"),
    ("PT3", "2251G0304X", "physical therapist, geriatrics"),
    ("PT4", "2251N0400X", "physical therapist, neurology"),
    ("RN1", "163WD0400X", "registered nurse, diabetes educator"),
    ("RN2", "163WD0400X", "registered nurse, diabetes educator"),
    ("RD1", "133V00000X", "registered dietitian"),
    ("RRT1", "227900000X", "registered respiratory therapist (asthma / COPD educator)"),
    ("MD1", "207Q00000X", "family physician, medical director"),
    ("MD2", "207RE0101X", "endocrinologist (part time)"),
    ("NP1", "363LF0000X", "nurse practitioner, family"),
    ("PA1", "363A00000X", "physician assistant"),
    ("DPM1", "213E00000X", "podiatrist (visiting foot-care educator)"),
    ("CM1", "171M00000X", "case manager / care coordinator"),
]
REFERRERS = [
    ("FM1", "207Q00000X", "family physician"),
    ("FM2", "207Q00000X", "family physician"),
    ("IM1", "207R00000X", "internist"),
    ("IM2", "207R00000X", "internist"),
    ("ENDO", "207RE0101X", "endocrinologist"),
    ("PULM", "207RP1001X", "pulmonologist"),
    ("ORTHO1", "207X00000X", "orthopaedic surgeon"),
    ("ORTHO2", "207X00000X", "orthopaedic surgeon"),
    ("PMR", "208100000X", "physiatrist"),
    ("NEURO", "2084N0400X", "neurologist"),
    ("XNP", "363LF0000X", "nurse practitioner (community clinic)"),
    ("XDC", "111N00000X", "chiropractor"),
]


# -- model ----------------------------------------------------------------------------------------
@dataclass
class Patient:
    pid: str
    payer_type: str
    payer_id: str
    condition: str
    dx: list[str]
    referrer: Provider
    order_date: date
    pa: str = ""


@dataclass
class Line:
    f: dict[str, str]
    rules: set[str]
    scenario: str


@dataclass
class Encounter:
    seq: int
    patient: Patient
    dos: date
    lines: list[Line]
    line_nos: list[int] | None = None
    claim_id: str = ""


@dataclass
class Scenario:
    key: str
    title: str
    clean: bool
    rules: set[str] = field(default_factory=set)


def fmt_money(x: float) -> str:
    return f"{x:.2f}"


class Builder:
    """Builds encounters (one claim per patient and date) and labels their lines."""

    def __init__(self, rng: random.Random, staff: dict[str, Provider], refs: dict[str, Provider],
                 pid_start: int, pid_prefix: str = "P") -> None:
        self.rng = rng
        self.staff = staff
        self.refs = refs
        self.next_pid = pid_start
        self.pid_prefix = pid_prefix
        self.encounters: list[Encounter] = []
        self.busy: set[tuple[str, date]] = set()
        self.scenarios: dict[str, Scenario] = {}
        self.pa_seq = 41000

    # patients --------------------------------------------------------------------------------
    def patient(self, payer_type: str, condition: str, referrer: str | None = None,
                order_date: date | None = None, dx: list[str] | None = None) -> Patient:
        pid = f"{self.pid_prefix}{self.next_pid:04d}"
        self.next_pid += 1
        rng = self.rng
        ref_pool = {
            "diabetes": ["FM1", "FM2", "IM1", "IM2", "ENDO"], "nutrition": ["FM1", "IM1", "ENDO"],
            "asthma": ["FM1", "FM2", "PULM"], "copd": ["PULM", "IM1", "IM2"],
            "knee_oa": ["ORTHO1", "ORTHO2", "FM1"], "tka": ["ORTHO1", "ORTHO2"],
            "back": ["FM2", "IM2", "PMR"], "shoulder": ["ORTHO1", "ORTHO2"],
            "balance": ["FM1", "IM1", "PMR"], "neuro": ["NEURO", "PMR"],
        }[condition]
        ref = self.refs[referrer or rng.choice(ref_pool)]
        dx_key = "diabetes" if condition == "nutrition" else condition
        pa = ""
        if payer_type in ("medicaid", "medicare_advantage"):
            self.pa_seq += rng.randint(3, 40)
            pa = f"PA26{self.pa_seq:06d}"
        return Patient(
            pid=pid, payer_type=payer_type, payer_id=rng.choice(PAYER_IDS[payer_type]), condition=condition,
            dx=list(dx if dx is not None else rng.choice(DX[dx_key])), referrer=ref,
            order_date=order_date or date(2026, 8, 1) + timedelta(days=rng.randint(0, 28)), pa=pa,
        )

    # scenarios -------------------------------------------------------------------------------
    def scenario(self, key: str, title: str, clean: bool = False) -> str:
        if key not in self.scenarios:
            self.scenarios[key] = Scenario(key, title, clean)
        return key

    # lines -----------------------------------------------------------------------------------
    def line(self, p: Patient, dos: date, cpt: str, units: int, *, minutes: int | None = None,
             mods: list[str] | None = None, rendering: str, pos: str = "11", order: bool = True,
             pa: bool = False, session: str = "", group_size: int | None = None, curriculum: str = "",
             dx: list[str] | None = None) -> dict[str, str]:
        r = self.staff[rendering]
        return {
            "patient_id": p.pid, "payer_type": p.payer_type, "payer_id": p.payer_id,
            "service_date": dos.isoformat(), "cpt": cpt, "modifiers": ";".join(mods or []),
            "units": str(units), "minutes": "" if minutes is None else str(minutes),
            "dx_codes": ";".join(p.dx if dx is None else dx), "pos": pos,
            "rendering_npi": r.npi, "rendering_taxonomy": r.taxonomy, "billing_npi": self.staff["GROUP"].npi,
            "referring_npi": p.referrer.npi if order else "",
            "referring_taxonomy": p.referrer.taxonomy if order else "",
            "order_date": p.order_date.isoformat() if order else "",
            "prior_auth_number": p.pa if pa else "", "session_id": session,
            "group_size": "" if group_size is None else str(group_size), "curriculum_id": curriculum,
            "charge": fmt_money(RATES.get(cpt[:5], 40.0) * max(units, 1)),
        }

    def encounter(self, p: Patient, dos: date, rows: list[dict[str, str]], scenario: str,
                  submitted: date | None = None, allow_busy: bool = False) -> Encounter:
        key = (p.pid, dos)
        if key in self.busy and not allow_busy:
            raise ValueError(f"{p.pid} already has an encounter on {dos}")
        self.busy.add(key)
        sub = submitted or dos + timedelta(days=self.rng.randint(1, 5))
        for row in rows:
            row["submission_date"] = sub.isoformat()
        enc = Encounter(len(self.encounters), p, dos, [Line(r, set(), scenario) for r in rows])
        self.encounters.append(enc)
        return enc

    def free(self, p: Patient, dos: date) -> bool:
        return (p.pid, dos) not in self.busy

    # education -------------------------------------------------------------------------------
    def edu_pos(self, p: Patient) -> bool:
        return p.payer_type in ("medicaid", "medicare_advantage")

    def individual_edu(self, p: Patient, dos: date, scenario: str, *, minutes: int = 30,
                       rendering: str = "RN1", pos: str = "11", mods: list[str] | None = None,
                       curriculum: str | None = None) -> Encounter:
        units = (minutes - 16) // 30 + 1
        cur = CURRICULA["diabetes" if p.condition == "nutrition" else p.condition] if curriculum is None else curriculum
        row = self.line(p, dos, "98960", units, minutes=minutes, mods=mods, rendering=rendering, pos=pos,
                        pa=self.edu_pos(p), group_size=1, curriculum=cur)
        return self.encounter(p, dos, [row], scenario)

    def group_session(self, patients: list[Patient], dos: date, session_id: str, educator: str,
                      minutes: int, curriculum: str, scenario: str, *, pos: str = "11",
                      mods: list[str] | None = None, code: str | None = None,
                      group_size: int | None = None) -> list[Encounter]:
        n = len(patients)
        code = code or ("98961" if n <= 4 else "98962")
        units = (minutes - 16) // 30 + 1
        out = []
        for p in patients:
            row = self.line(p, dos, code, units, minutes=minutes, mods=mods, rendering=educator, pos=pos,
                            pa=self.edu_pos(p), session=session_id,
                            group_size=n if group_size is None else group_size, curriculum=curriculum)
            out.append(self.encounter(p, dos, [row], scenario))
        return out

    def dsmt(self, p: Patient, dos: date, code: str, minutes: int, scenario: str, *, rendering: str = "RN1",
             session: str = "", group_size: int | None = None, pos: str = "11",
             mods: list[str] | None = None) -> Encounter:
        units = (minutes - 16) // 30 + 1
        row = self.line(p, dos, code, units, minutes=minutes, rendering=rendering, session=session,
                        group_size=group_size, pos=pos, mods=mods)
        return self.encounter(p, dos, [row], scenario)

    # physical therapy ------------------------------------------------------------------------
    def pt_units(self, p: Patient, minutes: list[int]) -> list[int] | None:
        """Units per timed line: CMS 8-minute day totals (Medicare, MA) or CPT mid-point per code."""
        if p.payer_type in EIGHT_MINUTE_PAYERS:
            total = sum(minutes)
            allowed = 0 if total < 8 else (total - 8) // 15 + 1
            units = [m // 15 for m in minutes]
            left = allowed - sum(units)
            for i in sorted(range(len(minutes)), key=lambda i: (-(minutes[i] % 15), i))[:left]:
                units[i] += 1
        else:
            units = [0 if m < 8 else (m - 8) // 15 + 1 for m in minutes]
        return units if all(u >= 1 for u in units) else None

    def pt_visit(self, p: Patient, dos: date, therapist: str, scenario: str, *, kind: str = "follow",
                 codes: list[str] | None = None, extra: list[dict[str, str]] | None = None,
                 submitted: date | None = None) -> Encounter:
        rng = self.rng
        if codes is None:
            if kind == "eval":
                codes = [rng.choice(EVALS), "97110", "97140"]
            elif kind == "reeval":
                codes = ["97164", "97110", "97530"]
            else:
                codes = rng.sample(TIMED_15, rng.choice((2, 2, 3)))
        timed = [c for c in codes if c in TIMED_15]
        while True:
            minutes = [rng.randint(8, 15) if c == "97140" else rng.randint(10, 32) for c in timed]
            units = self.pt_units(p, minutes)
            if units is not None:
                break
        by_code = dict(zip(timed, zip(minutes, units, strict=True), strict=True))
        rows = []
        for c in codes:
            mods = ["GP"]
            if (c == "97140" and any(e in codes for e in EVALS)) or (c == "97164" and "97530" in codes):
                mods.append("59")  # NCCI PTP column-2 code, distinct service documented
            if c in by_code:
                m, u = by_code[c]
                rows.append(self.line(p, dos, c, u, minutes=m, mods=mods, rendering=therapist))
            else:
                rows.append(self.line(p, dos, c, 1, minutes=rng.choice((30, 40, 45)), mods=mods, rendering=therapist))
        rows.extend(extra or [])
        return self.encounter(p, dos, rows, scenario, submitted=submitted)

    def em_visit(self, p: Patient, dos: date, scenario: str, rendering: str = "MD1") -> Encounter:
        row = self.line(p, dos, "99213", 1, rendering=rendering, order=False)
        return self.encounter(p, dos, [row], scenario)

    # labels ----------------------------------------------------------------------------------
    def label(self, lines: list[Line] | Line, rules: str | list[str], scenario: str) -> None:
        lines = [lines] if isinstance(lines, Line) else lines
        rules = [rules] if isinstance(rules, str) else rules
        for ln in lines:
            ln.rules.update(rules)
            ln.scenario = scenario
        self.scenarios[scenario].rules.update(rules)

    # output ----------------------------------------------------------------------------------
    def assemble(self, claim_prefix: str, first: int) -> list[Line]:
        ordered = sorted(self.encounters, key=lambda e: (e.dos, e.seq))
        out: list[Line] = []
        for n, enc in enumerate(ordered):
            enc.claim_id = f"{claim_prefix}{first + n:05d}"
            nos = enc.line_nos or list(range(1, len(enc.lines) + 1))
            for no, ln in zip(nos, enc.lines, strict=True):
                ln.f["claim_id"] = enc.claim_id
                ln.f["line_no"] = str(no)
                out.append(ln)
        return out


def weekdays(start: date, end: date, weekday: int | None = None) -> list[date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5 and (weekday is None or d.weekday() == weekday):
            out.append(d)
        d += timedelta(days=1)
    return out


SEPT = weekdays(date(2026, 9, 1), date(2026, 9, 30))
TUE, WED, THU, FRI = (weekdays(date(2026, 9, 1), date(2026, 9, 30), w) for w in (1, 2, 3, 4))


# -- the clinic export ----------------------------------------------------------------------------
def build_clinic(rng: random.Random) -> Builder:
    staff = make_providers(rng, CLINIC_STAFF)
    refs = make_providers(rng, REFERRERS)
    b = Builder(rng, staff, refs, 1)
    S = b.scenario

    # ---- clean: education group classes (98961 / 98962) ---------------------------------------
    clean_groups = S("clean-groups", "Self-management education classes, 98961/98962 by attendance", True)
    payers_edu = ["commercial"] * 5 + ["medicaid"] * 3 + ["medicare_advantage"] * 2
    dm_roster = [b.patient(rng.choice(payers_edu), "diabetes") for _ in range(8)]
    for week, dos in enumerate(TUE):
        attend = [p for p in dm_roster if rng.random() < 0.75]
        if len(attend) < 2:
            attend = dm_roster[:3]
        if len(attend) > 8:
            attend = attend[:8]
        b.group_session(attend, dos, f"DM-{dos:%m%d}-AM", "RN1", 90, CURRICULA["diabetes"], clean_groups)
    asthma_roster = [b.patient(rng.choice(payers_edu), "asthma") for _ in range(4)]
    for dos in THU[:4]:
        attend = [p for p in asthma_roster if rng.random() < 0.8] or asthma_roster[:2]
        if len(attend) < 2:
            attend = asthma_roster[:2]
        b.group_session(attend, dos, f"AST-{dos:%m%d}-PM", "RRT1", 60, CURRICULA["asthma"], clean_groups)
    copd_roster = [b.patient(rng.choice(payers_edu), "copd") for _ in range(6)]
    for i, dos in enumerate(WED[:4]):
        attend = [p for p in copd_roster if rng.random() < 0.8]
        if len(attend) < 2:
            attend = copd_roster[:2]
        virtual = i == 2  # one class held by video: POS 10 with modifier 95
        b.group_session(attend, dos, f"COPD-{dos:%m%d}", "RRT1", 60, CURRICULA["copd"], clean_groups,
                        pos="10" if virtual else "11", mods=["95"] if virtual else None)
    nutri_roster = [b.patient(rng.choice(payers_edu), "nutrition") for _ in range(4)]
    for dos in FRI[:3]:
        attend = [p for p in nutri_roster if rng.random() < 0.85]
        if len(attend) < 2:
            attend = nutri_roster[:2]
        b.group_session(attend, dos, f"NUT-{dos:%m%d}", "RD1", 45, CURRICULA["nutrition"], clean_groups)

    # ---- clean: individual education (98960) --------------------------------------------------
    clean_ind = S("clean-individual", "Individual self-management education, 98960", True)
    for i in range(11):
        cond = ["diabetes", "diabetes", "asthma", "copd"][i % 4]
        p = b.patient(rng.choice(payers_edu), cond)
        dos = rng.choice(SEPT)
        educator = {"diabetes": rng.choice(["RN1", "RN2", "RD1"]), "asthma": "RRT1", "copd": "RRT1"}[cond]
        tele = i % 5 == 3
        b.individual_edu(p, dos, clean_ind, minutes=rng.choice((30, 40, 45, 60)), rendering=educator,
                         pos="10" if tele else "11", mods=["95"] if tele else None)

    # ---- clean: Medicare DSMT (G0108 individual, G0109 group) ---------------------------------
    clean_dsmt = S("clean-dsmt", "Medicare diabetes self-management training, G0108/G0109", True)
    dsmt_roster = [b.patient("medicare", "diabetes", referrer=rng.choice(["FM1", "IM1", "ENDO"])) for _ in range(8)]
    for p in dsmt_roster:
        b.dsmt(p, rng.choice([d for d in SEPT if d.day <= 7]), "G0108", 60, clean_dsmt, rendering=rng.choice(["RN1", "RN2"]))
    for dos in [d for d in THU if d.day >= 8]:
        attend = [p for p in dsmt_roster if rng.random() < 0.7 and b.free(p, dos)]
        for p in attend:
            b.dsmt(p, dos, "G0109", 120, clean_dsmt, rendering="RN2", session=f"DSMT-{dos:%m%d}",
                   group_size=len(attend))

    # ---- clean: physical therapy ---------------------------------------------------------------
    clean_pt = S("clean-pt", "Physical therapy evaluations and visits with GP, plan of care, 8-minute rule", True)
    pt_payers = ["medicare"] * 7 + ["medicare_advantage"] * 4 + ["commercial"] * 6 + ["medicaid"] * 3
    pt_patients = []
    for i in range(16):
        cond = PT_CONDITIONS[i % len(PT_CONDITIONS)]
        p = b.patient(pt_payers[i % len(pt_payers)], cond)
        therapist = {"neuro": "PT4", "balance": "PT3"}.get(cond, rng.choice(["PT1", "PT2"]))
        new = i % 2 == 0
        days = sorted(rng.sample(SEPT[1:], 3 if new else 2))
        if new:
            p.order_date = days[0] - timedelta(days=rng.randint(2, 12))
        else:
            p.order_date = date(2026, 7, 20) + timedelta(days=rng.randint(0, 25))
        for j, dos in enumerate(days):
            kind = "eval" if new and j == 0 else ("reeval" if not new and j == 1 and i % 4 == 1 else "follow")
            b.pt_visit(p, dos, therapist, clean_pt, kind=kind)
        pt_patients.append((p, therapist, days))

    # ---- clean: remote therapeutic monitoring --------------------------------------------------
    clean_rtm = S("clean-rtm", "Remote therapeutic monitoring: setup 98975 once, device supply 98976/98977 once", True)
    for p, therapist, days in pt_patients[:5]:
        dos = next(d for d in SEPT[::-1] if b.free(p, d))
        row = b.line(p, dos, "98977", 1, mods=["GP"], rendering=therapist)
        b.encounter(p, dos, [row], clean_rtm)
    for p, therapist, days in pt_patients[6:10]:
        # setup billed on a visit day, on the same claim as the visit
        enc = next(e for e in b.encounters if e.patient is p)
        enc.lines.append(Line(b.line(p, enc.dos, "98975", 1, mods=["GP"], rendering=therapist), set(), clean_rtm))
        enc.lines[-1].f["submission_date"] = enc.lines[0].f["submission_date"]
    for p in copd_roster[:3]:
        dos = next(d for d in SEPT[8:] if b.free(p, d))
        b.encounter(p, dos, [b.line(p, dos, "98976", 1, rendering="RRT1")], clean_rtm)

    # ---- clean: physician office visits and group education by a QHP ---------------------------
    clean_em = S("clean-em", "Office visits 99213 by the clinic physicians", True)
    em_patients = dm_roster[:3] + copd_roster[3:5] + [b.patient(rng.choice(["medicare", "commercial"]), "diabetes") for _ in range(4)]
    for p in em_patients:
        dos = next(d for d in rng.sample(SEPT, len(SEPT)) if b.free(p, d))
        b.em_visit(p, dos, clean_em, rendering=rng.choice(["MD1", "MD1", "MD2"]))
    clean_99078 = S("clean-99078", "Group education by a nurse practitioner, 99078 (commercial)", True)
    for p in [b.patient("commercial", "diabetes") for _ in range(3)]:
        row = b.line(p, date(2026, 9, 17), "99078", 1, rendering="NP1", session="WT-0917", group_size=3)
        b.encounter(p, date(2026, 9, 17), [row], clean_99078)

    # =============================== injected defects ===========================================
    def one(cond: str, payer: str = "commercial", **kw) -> Patient:
        return b.patient(payer, cond, **kw)

    def pick_day(p: Patient, days: list[date] | None = None) -> date:
        return next(d for d in rng.sample(days or SEPT, len(days or SEPT)) if b.free(p, d))

    # medical necessity ---------------------------------------------------------------------------
    k = S("edu-prediabetes", "98960 for prediabetes (R73.03): no established chronic condition")
    p = one("diabetes", dx=["R73.03"])
    b.label(b.individual_edu(p, pick_day(p), k).lines, "EDU_DX_NOT_ESTABLISHED", k)

    k = S("edu-z-only", "98960 with only a Z code (Z71.3 dietary counselling)")
    p = one("diabetes", "medicaid", dx=["Z71.3"])
    b.label(b.individual_edu(p, pick_day(p), k, rendering="RD1").lines, "EDU_Z_PRIMARY_ONLY", k)

    k = S("dx-missing", "Office visit with no diagnosis")
    p = one("diabetes", dx=[])
    b.label(b.em_visit(p, pick_day(p), k).lines, "DX_MISSING", k)

    k = S("dsmt-prediabetes", "Medicare G0108 for prediabetes: DSMT needs a diabetes diagnosis")
    p = one("diabetes", "medicare", dx=["R73.03", "E66.9"])
    b.label(b.dsmt(p, pick_day(p), "G0108", 60, k).lines, "DSMT_DX_NOT_DIABETES", k)

    # group code / sessions -------------------------------------------------------------------------
    k = S("edu-98961-for-5", "Class of 5 billed 98961 (2-4 patients) instead of 98962")
    five = [one("diabetes", rng.choice(["commercial", "commercial", "medicaid"])) for _ in range(5)]
    for enc in b.group_session(five, date(2026, 9, 24), "DM-0924-PM", "RN2", 60, CURRICULA["diabetes"], k, code="98961"):
        b.label(enc.lines, ["EDU_GROUP_CODE_MISMATCH", "EDU_SESSION_COUNT_MISMATCH"], k)

    k = S("edu-98960-size-3", "98960 (individual) with a documented group size of 3, no session id")
    p = one("asthma")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RRT1")
    enc.lines[0].f["group_size"] = "3"
    b.label(enc.lines, "EDU_GROUP_CODE_MISMATCH", k)

    k = S("edu-over-8", "98962 with 10 patients documented (no code for more than 8)")
    p = one("copd")
    enc = b.group_session([p], date(2026, 9, 18), "", "RRT1", 90, CURRICULA["copd"], k, code="98962", group_size=10)
    b.label(enc[0].lines, "EDU_GROUP_OVER_8", k)

    k = S("edu-couple-as-individual", "Two patients taught together, each billed 98960 under one session id")
    pair = [one("diabetes"), one("diabetes")]
    for enc in b.group_session(pair, date(2026, 9, 11), "IND-0911-2", "RN2", 45, CURRICULA["diabetes"], k, code="98960"):
        enc.lines[0].f["group_size"] = ""
        b.label(enc.lines, "EDU_SESSION_COUNT_MISMATCH", k)

    k = S("edu-size-conflict", "98961 class documented with 2 present, but 3 patients billed for it")
    trio = [one("asthma", rng.choice(["commercial", "medicaid"])) for _ in range(3)]
    for enc in b.group_session(trio, date(2026, 9, 29), "AST-0929-PM", "RRT1", 60, CURRICULA["asthma"], k, group_size=2):
        b.label(enc.lines, "EDU_SESSION_SIZE_CONFLICT", k)

    k = S("edu-mixed-codes", "One class of 3: two billed 98961 for a documented group of 3 (right), one billed 98960 without a group size")
    trio = [one("copd"), one("copd"), one("copd")]
    encs = b.group_session(trio, date(2026, 9, 21), "COPD-0921-PM", "RRT1", 60, CURRICULA["copd"], k)
    encs[2].lines[0].f.update({"cpt": "98960", "group_size": "", "charge": fmt_money(RATES["98960"] * 2)})
    b.label(encs[2].lines, ["EDU_SESSION_MIXED_CODES", "EDU_SESSION_COUNT_MISMATCH"], k)

    # documentation, time -----------------------------------------------------------------------------
    dm_lines = [e for e in b.encounters if e.lines[0].scenario == clean_groups and e.lines[0].f["cpt"] == "98962"]
    k = S("edu-no-curriculum", "One class line without the curriculum id")
    b.label(dm_lines[1].lines, "EDU_CURRICULUM_MISSING", k)
    dm_lines[1].lines[0].f["curriculum_id"] = ""
    k = S("edu-no-group-size", "One 98962 class line without the group size")
    b.label(dm_lines[-2].lines, "EDU_GROUP_SIZE_MISSING", k)
    dm_lines[-2].lines[0].f["group_size"] = ""

    k = S("edu-no-minutes", "98960 with no minutes documented")
    p = one("diabetes", "medicare_advantage")
    enc = b.individual_edu(p, pick_day(p), k)
    enc.lines[0].f["minutes"] = ""
    b.label(enc.lines, "EDU_TIME_MISSING", k)

    k = S("edu-12-minutes", "98960 for a 12-minute contact (under the 16-minute mid-point)")
    p = one("asthma")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RRT1", minutes=30)
    enc.lines[0].f["minutes"] = "12"
    b.label(enc.lines, "EDU_TIME_BELOW_MIN", k)

    k = S("edu-units-over-time", "98961 class of 60 minutes billed 3 units on one line (supports 2)")
    line = next(e for e in b.encounters if e.lines[0].scenario == clean_groups and e.lines[0].f["cpt"] == "98961"
                and e.lines[0].f["minutes"] == "60" and e.patient.payer_type == "commercial").lines[0]
    line.f.update({"units": "3", "charge": fmt_money(RATES["98961"] * 3)})
    b.label(line, "EDU_UNITS_EXCEED_TIME", k)

    k = S("edu-mod52", "98960 reported with modifier 52 for a shortened session")
    p = one("diabetes")
    b.label(b.individual_edu(p, pick_day(p), k, minutes=20, mods=["52"]).lines, "TIMED_MOD52", k)

    # Medicare and education codes -----------------------------------------------------------------
    k = S("edu-medicare-in-class", "Original Medicare COPD patient billed 98961 in a COPD class")
    klass = [one("copd", "commercial"), one("copd", "medicaid"), one("copd", "medicare", referrer="PULM")]
    encs = b.group_session(klass, date(2026, 9, 14), "COPD-0914-PM", "RRT1", 60, CURRICULA["copd"], k)
    b.label(encs[2].lines, "EDU_MEDICARE_NOT_PAYABLE", k)

    k = S("edu-medicare-98960", "Original Medicare diabetic billed 98960 instead of G0108")
    for _ in range(2):
        p = one("diabetes", "medicare")
        b.label(b.individual_edu(p, pick_day(p), k, rendering="RN2").lines, "EDU_MEDICARE_NOT_PAYABLE", k)

    k = S("edu-medicare-telehealth", "Original Medicare 98960 by video (POS 10, modifier 95)")
    p = one("diabetes", "medicare")
    b.label(b.individual_edu(p, pick_day(p), k, pos="10", mods=["95"]).lines,
            ["EDU_MEDICARE_NOT_PAYABLE", "TELE_EDU_MEDICARE"], k)

    k = S("99078-medicare", "99078 group education billed to Original Medicare")
    p = one("diabetes", "medicare")
    dos = pick_day(p)
    b.label(b.encounter(p, dos, [b.line(p, dos, "99078", 1, rendering="MD1", group_size=4, session="WT-MCR")], k).lines,
            "EDU_99078_MEDICARE", k)

    k = S("99078-by-rn", "99078 (physician/QHP group education) rendered by a registered nurse")
    p = one("diabetes")
    dos = pick_day(p)
    b.label(b.encounter(p, dos, [b.line(p, dos, "99078", 1, rendering="RN2", group_size=3)], k).lines,
            "EDU_99078_NONQHP", k)

    # orders and referrers ---------------------------------------------------------------------------
    k = S("edu-no-order", "98960 with no ordering physician")
    p = one("copd")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RRT1")
    enc.lines[0].f.update({"referring_npi": "", "referring_taxonomy": "", "order_date": ""})
    b.label(enc.lines, "EDU_ORDER_MISSING", k)

    k = S("edu-order-after", "98960 whose order is dated after the service")
    p = one("diabetes")
    dos = pick_day(p, SEPT[:10])
    enc = b.individual_edu(p, dos, k)
    enc.lines[0].f["order_date"] = (dos + timedelta(days=6)).isoformat()
    b.label(enc.lines, "EDU_ORDER_AFTER_SERVICE", k)

    k = S("edu-np-referrer", "98960 ordered by a nurse practitioner (CPT: a physician prescribes)")
    p = one("asthma", referrer="XNP")
    b.label(b.individual_edu(p, pick_day(p), k, rendering="RRT1").lines, "EDU_REFERRER_NOT_PHYSICIAN", k)

    k = S("edu-self-referral", "98960 where the educator entered herself as the referring provider")
    p = one("diabetes")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RN2")
    enc.lines[0].f.update({"referring_npi": b.staff["RN2"].npi, "referring_taxonomy": b.staff["RN2"].taxonomy})
    b.label(enc.lines, ["EDU_SELF_REFERRAL", "EDU_REFERRER_NOT_PHYSICIAN"], k)

    k = S("dsmt-no-order", "Medicare G0108 with no referring physician")
    p = one("diabetes", "medicare")
    enc = b.dsmt(p, pick_day(p), "G0108", 60, k)
    enc.lines[0].f.update({"referring_npi": "", "referring_taxonomy": "", "order_date": ""})
    b.label(enc.lines, "DSMT_ORDER_MISSING", k)

    k = S("dsmt-class-no-order", "Medicare G0109 class lines of one patient with no referring physician")
    dsmt_pat = next(p for p in dsmt_roster if sum(e.patient is p for e in b.encounters) >= 3)
    for enc in b.encounters:
        if enc.patient is dsmt_pat and enc.lines[0].f["cpt"] == "G0109":
            enc.lines[0].f.update({"referring_npi": "", "referring_taxonomy": "", "order_date": ""})
            b.label(enc.lines, "DSMT_ORDER_MISSING", k)

    # rendering providers ------------------------------------------------------------------------------
    for key, title, who, rule in [
        ("edu-by-physician", "98960 rendered by the endocrinologist (physicians bill E/M)", "MD2", "EDU_RENDERING_PHYSICIAN"),
        ("edu-by-pa", "98960 rendered by a physician assistant", "PA1", "EDU_RENDERING_NP_PA"),
        ("edu-by-podiatrist", "98960 foot-care teaching by a podiatrist (not on the qualified list)", "DPM1", "EDU_RENDERING_UNLISTED"),
        ("edu-by-case-manager", "98960 by a case manager (taxonomy 171M, unlisted)", "CM1", "EDU_RENDERING_UNLISTED"),
    ]:
        k = S(key, title)
        p = one("diabetes")
        b.label(b.individual_edu(p, pick_day(p), k, rendering=who).lines, rule, k)

    k = S("edu-no-taxonomy", "98960 with the rendering taxonomy left empty")
    p = one("copd", "medicaid")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RRT1")
    enc.lines[0].f["rendering_taxonomy"] = ""
    b.label(enc.lines, "EDU_RENDERING_TAXONOMY_MISSING", k)

    k = S("em-by-pt", "99213 office visit billed under a physical therapist")
    p = one("back")
    b.label(b.em_visit(p, pick_day(p), k, rendering="PT1").lines, "PT_EM_BY_THERAPIST", k)

    # same-day E/M -----------------------------------------------------------------------------------
    k = S("edu-same-day-em", "Physician visit 99213 and 98960 teaching the same day, same billing NPI")
    p = one("diabetes")
    dos = pick_day(p)
    em = b.line(p, dos, "99213", 1, rendering="MD1", order=False)
    edu = b.line(p, dos, "98960", 1, minutes=30, rendering="RN1", group_size=1, curriculum=CURRICULA["diabetes"])
    enc = b.encounter(p, dos, [em, edu], k)
    enc.lines[0].scenario = k
    b.label(enc.lines[1], "EDU_SAME_DAY_EM", k)

    # physical therapy defects -------------------------------------------------------------------------
    def pt_patient(payer: str, cond: str = "knee_oa", **kw) -> Patient:
        p = one(cond, payer, **kw)
        p.order_date = date(2026, 8, 20) + timedelta(days=rng.randint(0, 10))
        return p

    def timed_rows(p: Patient, dos: date, spec: list[tuple[str, int, int]], therapist: str = "PT1",
                   mods: list[str] | None = None) -> list[dict[str, str]]:
        return [b.line(p, dos, c, u, minutes=m, mods=["GP"] if mods is None else mods, rendering=therapist)
                for c, m, u in spec]

    k = S("pt-8min-overbilled", "Medicare/MA day billed per code: 24 + 24 minutes as 2 + 2 units (8-minute rule allows 3)")
    for payer in ("medicare", "medicare_advantage"):
        p = pt_patient(payer)
        dos = pick_day(p, SEPT[5:])
        enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 24, 2), ("97112", 24, 2)]), k)
        b.label(enc.lines, "PT_8MIN_UNITS", k)

    k = S("pt-8min-three-codes", "Medicare day of 10 + 10 + 10 minutes on three codes billed 1 unit each (30 minutes = 2)")
    p = pt_patient("medicare", "tka")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 10, 1), ("97112", 10, 1), ("97530", 10, 1)], "PT2"), k)
    b.label(enc.lines, "PT_8MIN_UNITS", k)

    k = S("pt-8min-under-8", "Medicare day with one 15-minute code for 6 minutes (after a re-evaluation)")
    p = pt_patient("medicare", "shoulder")
    dos = pick_day(p, SEPT[5:])
    rows = [b.line(p, dos, "97164", 1, minutes=30, mods=["GP"], rendering="PT2")] + timed_rows(p, dos, [("97140", 6, 1)], "PT2")
    enc = b.encounter(p, dos, rows, k)
    enc.lines[0].scenario = k
    # A day under 8 minutes is reported once, by PT_8MIN_BELOW_MIN (PT_8MIN_UNITS needs >= 8 minutes).
    b.label(enc.lines[1], ["PT_8MIN_BELOW_MIN"], k)

    k = S("pt-per-code-overbilled", "Commercial 97110 for 20 minutes billed 2 units (mid-point per code: 1)")
    p = pt_patient("commercial", "back")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 20, 2), ("97140", 15, 1)]), k)
    enc.lines[1].scenario = k
    b.label(enc.lines[0], "PT_UNITS_EXCEED_TIME", k)

    k = S("pt-no-minutes", "Medicaid 97530 with no minutes")
    p = pt_patient("medicaid", "balance")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97112", 23, 2), ("97530", 20, 1)], "PT3"), k)
    enc.lines[1].f["minutes"] = ""
    enc.lines[0].scenario = k
    b.label(enc.lines[1], "PT_TIME_MISSING", k)

    k = S("pt-eval-2-units", "97162 evaluation billed 2 units")
    p = pt_patient("commercial", "shoulder")
    dos = pick_day(p)
    rows = [b.line(p, dos, "97162", 2, minutes=45, mods=["GP"], rendering="PT2")] + timed_rows(p, dos, [("97110", 23, 2)], "PT2")
    enc = b.encounter(p, dos, rows, k)
    enc.lines[1].scenario = k
    b.label(enc.lines[0], "PT_EVAL_UNITS", k)

    k = S("pt-no-gp", "Medicare 97112 without the GP modifier")
    p = pt_patient("medicare", "balance")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 25, 2), ("97112", 15, 1)], "PT3"), k)
    enc.lines[1].f["modifiers"] = ""
    enc.lines[0].scenario = k
    b.label(enc.lines[1], "PT_GP_MISSING", k)

    k = S("pt-no-gp-visit", "Medicare evaluation visit exported with no GP on any line (59 kept on 97140)")
    p = pt_patient("medicare", "knee_oa")
    dos = pick_day(p)
    rows = [b.line(p, dos, "97161", 1, minutes=40, mods=[], rendering="PT1")] + timed_rows(p, dos, [("97110", 30, 2), ("97140", 10, 1)], mods=[])
    rows[2]["modifiers"] = "59"
    enc = b.encounter(p, dos, rows, k)
    b.label(enc.lines, "PT_GP_MISSING", k)

    k = S("pt-ncci-no-59", "Evaluation with 97140 on the same day, no 59/X modifier on 97140")
    for payer, ev in (("medicare", "97162"), ("commercial", "97161")):
        p = pt_patient(payer, "back")
        dos = pick_day(p)
        rows = [b.line(p, dos, ev, 1, minutes=40, mods=["GP"], rendering="PT1")] + timed_rows(p, dos, [("97110", 30, 2), ("97140", 12, 1)])
        enc = b.encounter(p, dos, rows, k)
        for ln in enc.lines:
            ln.scenario = k
        b.label(enc.lines[2], "PT_NCCI_59", k)

    k = S("pt-reeval-ncci", "97164 re-evaluation with 97530 the same day, no 59 on 97164")
    p = pt_patient("medicare_advantage", "tka")
    dos = pick_day(p)
    rows = [b.line(p, dos, "97164", 1, minutes=30, mods=["GP"], rendering="PT2")] + timed_rows(p, dos, [("97530", 25, 2)], "PT2")
    enc = b.encounter(p, dos, rows, k)
    enc.lines[1].scenario = k
    b.label(enc.lines[0], "PT_NCCI_59", k)

    k = S("pt-no-cert", "Medicare PT visit with no certifying physician on the claim")
    p = pt_patient("medicare", "knee_oa")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 28, 2), ("97140", 10, 1)]), k)
    for ln in enc.lines:
        ln.f.update({"referring_npi": "", "referring_taxonomy": "", "order_date": ""})
    b.label(enc.lines, "PT_CERT_NPI_MISSING", k)

    k = S("pt-cert-expired", "Medicare PT visit 100+ days after the plan-of-care certification")
    p = pt_patient("medicare", "neuro")
    p.order_date = date(2026, 5, 28)
    dos = pick_day(p, SEPT[6:])
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97112", 25, 2), ("97530", 20, 1)], "PT4"), k)
    b.label(enc.lines, "PT_CERT_EXPIRED", k)

    k = S("pt-chiro-referral", "PT ordered by a chiropractor")
    p = pt_patient("commercial", "back", referrer="XDC")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 30, 2), ("97140", 15, 1)]), k)
    b.label(enc.lines, "PT_REFERRER_INELIGIBLE", k)

    # DSMT frequency ---------------------------------------------------------------------------------
    k = S("dsmt-over-10h", "Medicare patient billed 11 hours of DSMT in 2026 (G0108 3 h + four 2-hour G0109 classes)")
    p = one("diabetes", "medicare", referrer="ENDO")
    encs = [b.dsmt(p, date(2026, 9, 2), "G0108", 180, k, rendering="RD1")]
    for dos in [d for d in TUE if d.day >= 8][:4]:
        encs.append(b.dsmt(p, dos, "G0109", 120, k, rendering="RD1", session=f"DSMT2-{dos:%m%d}", group_size=6))
    b.label(encs[-1].lines, "DSMT_HOURS_EXCEEDED", k)  # 6 + 4 + 4 + 4 = 18 units are covered; the last class makes 22

    # RTM frequency ---------------------------------------------------------------------------------
    k = S("rtm-device-twice", "98977 device supply billed twice within 30 days")
    p, therapist, days = pt_patients[5]
    first_day = next(d for d in SEPT if b.free(p, d))
    for dos in (first_day, next(d for d in SEPT if d >= first_day + timedelta(days=20) and b.free(p, d))):
        enc = b.encounter(p, dos, [b.line(p, dos, "98977", 1, mods=["GP"], rendering=therapist)], k)
    b.label(enc.lines, "RTM_DEVICE_FREQUENCY", k)

    k = S("rtm-setup-twice", "98975 setup billed again two weeks after the first setup")
    p, therapist, days = pt_patients[10]
    first = next(e for e in b.encounters if e.patient is p)
    first.lines.append(Line(b.line(p, first.dos, "98975", 1, mods=["GP"], rendering=therapist), set(), k))
    first.lines[-1].f["submission_date"] = first.lines[0].f["submission_date"]
    dos = next(d for d in SEPT if d >= first.dos + timedelta(days=12) and b.free(p, d))
    enc = b.encounter(p, dos, [b.line(p, dos, "98975", 1, mods=["GP"], rendering=therapist)], k)
    b.label(enc.lines, "RTM_SETUP_REPEATED", k)

    # identifiers and codes ---------------------------------------------------------------------------
    k = S("npi-rendering-typo", "Rendering NPI keyed with a wrong last digit")
    p = one("diabetes")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RN1")
    enc.lines[0].f["rendering_npi"] = corrupt_npi(enc.lines[0].f["rendering_npi"])
    b.label(enc.lines, "NPI_RENDERING_INVALID", k)

    k = S("npi-billing-typo", "Billing NPI keyed with a wrong last digit")
    p = one("copd", "medicare_advantage")
    enc = b.em_visit(p, pick_day(p), k)
    enc.lines[0].f["billing_npi"] = corrupt_npi(enc.lines[0].f["billing_npi"])
    b.label(enc.lines, "NPI_BILLING_INVALID", k)

    k = S("npi-referring-typo", "Referring NPI keyed with a wrong last digit")
    p = one("asthma", "medicaid")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RRT1")
    enc.lines[0].f["referring_npi"] = corrupt_npi(enc.lines[0].f["referring_npi"])
    b.label(enc.lines, "NPI_REFERRING_INVALID", k)

    k = S("dx-icd9", "PT line coded with an ICD-9 code (724.2)")
    p = pt_patient("commercial", "back", dx=["724.2"])
    dos = pick_day(p)
    b.label(b.encounter(p, dos, timed_rows(p, dos, [("97110", 30, 2)]), k).lines, "DX_FORMAT_INVALID", k)

    k = S("dx-unknown", "98960 with E11.99, a well-formed code that does not exist")
    p = one("diabetes", dx=["E11.99"])
    b.label(b.individual_edu(p, pick_day(p), k).lines, "DX_CODE_UNKNOWN", k)

    k = S("dx-header", "PT line with M54.5, a header code since FY2022 (M54.50/.51/.59 are billable)")
    p = pt_patient("medicaid", "back", dx=["M54.5"])
    dos = pick_day(p)
    b.label(b.encounter(p, dos, timed_rows(p, dos, [("97110", 38, 3)]), k).lines, "DX_NOT_BILLABLE", k)

    k = S("cpt-modifier-glued", "Procedure code exported with its modifier glued on (97110GP)")
    p = pt_patient("commercial", "shoulder")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 23, 2), ("97140", 15, 1)], "PT2"), k)
    enc.lines[0].f.update({"cpt": "97110GP", "modifiers": ""})
    enc.lines[1].scenario = k
    b.label(enc.lines[0], "CPT_FORMAT_INVALID", k)

    k = S("pos-name", "Place of service exported as its name (Office) instead of its code")
    p = one("asthma")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RRT1")
    enc.lines[0].f["pos"] = "Office"
    b.label(enc.lines, "POS_FORMAT_INVALID", k)

    k = S("taxonomy-truncated", "Rendering taxonomy truncated to 9 characters")
    p = pt_patient("commercial", "knee_oa")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 30, 2)], "PT2"), k)
    enc.lines[0].f["rendering_taxonomy"] = enc.lines[0].f["rendering_taxonomy"][:9]
    b.label(enc.lines, "TAXONOMY_FORMAT_INVALID", k)

    k = S("units-zero", "98960 billed with 0 units")
    p = one("diabetes")
    enc = b.individual_edu(p, pick_day(p), k)
    enc.lines[0].f["units"] = "0"
    b.label(enc.lines, "UNITS_NOT_POSITIVE", k)

    # filing, duplicates, prior auth -------------------------------------------------------------------
    k = S("filing-expired", "Commercial 98960 from 2026-09-02 first submitted 2026-12-10 (90-day limit)")
    p = one("diabetes")
    enc = b.individual_edu(p, date(2026, 9, 2), k)
    enc.lines[0].f["submission_date"] = "2026-12-10"
    b.label(enc.lines, "TIMELY_FILING_EXPIRED", k)

    k = S("filing-near", "Commercial PT visit of 2026-09-04 submitted 2026-11-10, 23 days before the limit")
    p = pt_patient("commercial", "tka")
    enc = b.encounter(p, date(2026, 9, 4), timed_rows(p, date(2026, 9, 4), [("97110", 25, 2), ("97530", 15, 1)], "PT2"), k,
                      submitted=date(2026, 11, 10))
    b.label(enc.lines, "TIMELY_FILING_NEAR", k)

    k = S("duplicate-rebilled", "A class line billed again on a second claim")
    orig = next(e for e in b.encounters if e.lines[0].scenario == clean_groups and e.patient.payer_type == "commercial"
                and e.lines[0].f["cpt"] == "98962")
    copy = dict(orig.lines[0].f)
    copy["submission_date"] = (orig.dos + timedelta(days=9)).isoformat()
    dup = b.encounter(orig.patient, orig.dos, [copy], k, submitted=orig.dos + timedelta(days=9), allow_busy=True)
    b.label(dup.lines, "DUPLICATE_LINE", k)

    k = S("line-key-twice", "Export emitted line 2 of a claim twice (two different procedures)")
    p = pt_patient("commercial", "knee_oa")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 23, 2), ("97112", 15, 1), ("97530", 15, 1)]), k)
    enc.line_nos = [1, 2, 2]
    enc.lines[0].scenario = k
    b.label(enc.lines[1:], "DUPLICATE_LINE_KEY", k)

    k = S("pa-missing", "Medicaid / Medicare Advantage class lines with no prior authorization number")
    picked = [next(e for e in b.encounters if e.lines[0].scenario == clean_groups and e.patient.payer_type == "medicaid"),
              next(e for e in b.encounters if e.lines[0].scenario == clean_ind and e.patient.payer_type == "medicare_advantage")]
    for enc in picked:
        enc.lines[0].f["prior_auth_number"] = ""
        b.label(enc.lines, "PRIOR_AUTH_MISSING", k)

    k = S("pa-never-obtained", "Class patient whose authorization was never obtained: every class line lacks it")
    pa_pat = next(p for p in dm_roster if p.payer_type in ("medicaid", "medicare_advantage")
                  and all(not ln.rules for e in b.encounters if e.patient is p for ln in e.lines))
    for enc in b.encounters:
        if enc.patient is pa_pat and enc.lines[0].f["cpt"] in ("98961", "98962"):
            enc.lines[0].f["prior_auth_number"] = ""
            b.label(enc.lines, "PRIOR_AUTH_MISSING", k)

    k = S("order-never-received", "COPD class patient whose referral never arrived: no ordering physician on any class line")
    for enc in b.encounters:
        if enc.patient is copd_roster[5] and enc.lines[0].f["cpt"] in ("98961", "98962"):
            enc.lines[0].f.update({"referring_npi": "", "referring_taxonomy": "", "order_date": ""})
            b.label(enc.lines, "EDU_ORDER_MISSING", k)

    by_session: dict[str, list[Encounter]] = {}
    for enc in b.encounters:
        if enc.lines[0].scenario == clean_groups:
            by_session.setdefault(enc.lines[0].f["session_id"], []).append(enc)
    late_id, late = next((sid, encs) for sid, encs in by_session.items()
                         if all(not e.lines[0].rules for e in encs)
                         and {e.patient.payer_type for e in encs} > {"commercial"})
    late_day = late[0].dos
    late_sub = late_day + timedelta(days=69)  # 90-day limit: 21 days left
    k = S("filing-near-class", f"Lines of the {late_day.isoformat()} class {late_id} held until {late_sub.isoformat()}: "
          "21 days left of the commercial 90-day limit (the class's Medicaid/MA lines have 365 days)")
    for enc in late:
        for ln in enc.lines:
            ln.f["submission_date"] = late_sub.isoformat()
        if enc.patient.payer_type == "commercial":
            b.label(enc.lines, "TIMELY_FILING_NEAR", k)
        else:
            for ln in enc.lines:
                ln.scenario = k

    # unreadable / missing input ---------------------------------------------------------------------
    k = S("units-text", "Units exported as text ('two')")
    p = pt_patient("commercial", "knee_oa")
    dos = pick_day(p)
    enc = b.encounter(p, dos, timed_rows(p, dos, [("97110", 30, 2), ("97140", 12, 1)]), k)
    enc.lines[0].f["units"] = "two"
    enc.lines[1].scenario = k
    b.label(enc.lines[0], "INPUT_UNREADABLE_VALUE", k)

    k = S("charge-na", "Charge exported as N/A")
    p = one("copd", "medicaid")
    enc = b.individual_edu(p, pick_day(p), k, rendering="RRT1")
    enc.lines[0].f["charge"] = "N/A"
    b.label(enc.lines, "INPUT_UNREADABLE_VALUE", k)

    k = S("rendering-npi-blank", "Office visit with the rendering NPI left empty")
    p = one("diabetes")
    enc = b.em_visit(p, pick_day(p), k)
    enc.lines[0].f["rendering_npi"] = ""
    b.label(enc.lines, "INPUT_REQUIRED_MISSING", k)

    # telehealth ------------------------------------------------------------------------------------
    k = S("tele-no-modifier", "Video 98960 (POS 10) without modifier 95")
    p = one("diabetes")
    b.label(b.individual_edu(p, pick_day(p), k, pos="10").lines, "TELE_MODIFIER_MISSING", k)

    k = S("tele-95-in-office", "In-office 98960 (POS 11) carrying modifier 95")
    p = one("asthma")
    b.label(b.individual_edu(p, pick_day(p), k, rendering="RRT1", mods=["95"]).lines, "TELE_MODIFIER_IN_PERSON_POS", k)

    k = S("tele-audio-only", "98960 by telephone (modifier 93, POS 10)")
    p = one("copd")
    b.label(b.individual_edu(p, pick_day(p), k, rendering="RRT1", pos="10", mods=["93"]).lines, "TELE_AUDIO_ONLY_EDU", k)

    k = S("tele-gq", "Medicare G0108 by telehealth with modifier GQ (AK/HI demonstration only)")
    p = one("diabetes", "medicare")
    b.label(b.dsmt(p, pick_day(p), "G0108", 60, k, pos="02", mods=["GQ"]).lines, "TELE_GQ_OUTSIDE_DEMO", k)
    return b


# -- the alternative layout -----------------------------------------------------------------------
ALT_MAPPING = {
    "claim_id": "Claim #", "line_no": "Line", "patient_id": "Member ID", "payer_type": "Payer Class",
    "payer_id": "Plan Code", "service_date": "DOS", "submission_date": "Bill Date", "cpt": "Proc Code",
    "modifiers": "Mods", "units": "Qty", "minutes": "Time (min)", "dx_codes": "Dx", "pos": "POS",
    "rendering_npi": "Rendering NPI", "rendering_taxonomy": "Rendering Taxonomy", "billing_npi": "Billing NPI",
    "referring_npi": "Referring NPI", "referring_taxonomy": "Ref Taxonomy", "order_date": "Order Date",
    "prior_auth_number": "Auth #", "session_id": "Class ID", "group_size": "Attendees",
    "curriculum_id": "Curriculum", "charge": "Charge",
}
ALT_HEADERS = [
    "Batch", "Claim #", "Line", "DOS", "Member ID", "Payer Class", "Plan Code", "Location", "Proc Code", "Mods",
    "Qty", "Time (min)", "Dx", "POS", "Rendering NPI", "Rendering Taxonomy", "Billing NPI", "Referring NPI",
    "Ref Taxonomy", "Order Date", "Auth #", "Class ID", "Attendees", "Curriculum", "Charge", "Bill Date",
    "Visit Type", "Entered By",
]
PAYER_CLASS = {"medicare": "Medicare", "medicare_advantage": "Medicare Advantage", "medicaid": "Medicaid",
               "commercial": "Commercial"}


def build_alt(rng: random.Random) -> Builder:
    staff = make_providers(rng, CLINIC_STAFF)
    refs = make_providers(rng, REFERRERS)
    b = Builder(rng, staff, refs, 5001)
    S = b.scenario
    payers_edu = ["commercial", "commercial", "medicaid", "medicare_advantage"]

    clean = S("alt-clean", "Classes, individual teaching, DSMT, PT and office visits", True)
    roster = [b.patient(rng.choice(payers_edu), "diabetes") for _ in range(5)]
    for dos in WED[:3]:
        attend = [p for p in roster if rng.random() < 0.8] or roster[:2]
        b.group_session(attend if len(attend) >= 2 else roster[:2], dos, f"DM{dos:%m%d}", "RN1", 90,
                        CURRICULA["diabetes"], clean)
    pulm = [b.patient(rng.choice(payers_edu), c) for c in ("copd", "copd", "asthma")]
    b.group_session(pulm, date(2026, 9, 10), "PULM0910", "RRT1", 60, CURRICULA["copd"], clean)
    for i in range(5):
        p = b.patient(rng.choice(payers_edu), ("diabetes", "asthma")[i % 2])
        tele = i == 2
        b.individual_edu(p, rng.choice(SEPT), clean, minutes=rng.choice((30, 45, 60)),
                         rendering="RN2" if p.condition == "diabetes" else "RRT1",
                         pos="10" if tele else "11", mods=["95"] if tele else None)
    for _ in range(3):
        p = b.patient("medicare", "diabetes")
        b.dsmt(p, rng.choice(SEPT[:8]), "G0108", 60, clean)
    for i in range(4):
        p = b.patient(("medicare", "commercial", "medicare_advantage", "medicaid")[i], PT_CONDITIONS[i])
        days = sorted(rng.sample(SEPT[2:], 2))
        p.order_date = days[0] - timedelta(days=5)
        b.pt_visit(p, days[0], "PT1", clean, kind="eval")
        b.pt_visit(p, days[1], "PT1", clean)
    for _ in range(2):
        p = b.patient("commercial", "diabetes")
        b.em_visit(p, rng.choice(SEPT), clean)

    def one(cond: str, payer: str = "commercial", **kw) -> Patient:
        return b.patient(payer, cond, **kw)

    def day(p: Patient) -> date:
        return next(d for d in rng.sample(SEPT, len(SEPT)) if b.free(p, d))

    k = S("alt-98962-for-4", "Class of 4 billed 98962 (5-8 patients)")
    four = [one("diabetes") for _ in range(4)]
    for enc in b.group_session(four, date(2026, 9, 24), "DM0924B", "RN1", 90, CURRICULA["diabetes"], k, code="98962"):
        # group_size 4 is documented: the code is judged by it; the 4 patients billed are only a floor
        b.label(enc.lines, "EDU_GROUP_CODE_MISMATCH", k)
    k = S("alt-medicare-98960", "Original Medicare diabetic billed 98960")
    p = one("diabetes", "medicare")
    b.label(b.individual_edu(p, day(p), k).lines, "EDU_MEDICARE_NOT_PAYABLE", k)
    k = S("alt-npi-typo", "Rendering NPI with a wrong check digit")
    p = one("asthma")
    enc = b.individual_edu(p, day(p), k, rendering="RRT1")
    enc.lines[0].f["rendering_npi"] = corrupt_npi(enc.lines[0].f["rendering_npi"])
    b.label(enc.lines, "NPI_RENDERING_INVALID", k)
    k = S("alt-8min", "Medicare PT day 24 + 24 minutes billed 2 + 2 units; 97112 also lacks GP")
    p = one("balance", "medicare")
    p.order_date = date(2026, 9, 1)
    dos = date(2026, 9, 16)
    rows = [b.line(p, dos, "97110", 2, minutes=24, mods=["GP"], rendering="PT1"),
            b.line(p, dos, "97112", 2, minutes=24, mods=[], rendering="PT1")]
    enc = b.encounter(p, dos, rows, k)
    b.label(enc.lines, "PT_8MIN_UNITS", k)
    b.label(enc.lines[1], "PT_GP_MISSING", k)
    k = S("alt-dx-header", "98960 with J45.9, a header code (J45.90x / J45.99x are billable)")
    p = one("asthma", dx=["J45.9"])
    b.label(b.individual_edu(p, day(p), k, rendering="RRT1").lines, "DX_NOT_BILLABLE", k)
    k = S("alt-late", "Commercial 98960 submitted 95 days after service")
    p = one("diabetes")
    enc = b.individual_edu(p, date(2026, 9, 3), k, rendering="RN2", )
    enc.lines[0].f["submission_date"] = "2026-12-07"
    b.label(enc.lines, "TIMELY_FILING_EXPIRED", k)
    k = S("alt-bad-date", "DOS 09/31/2026 (no such date)")
    p = one("diabetes")
    enc = b.individual_edu(p, date(2026, 9, 30), k, rendering="RN2")
    enc.lines[0].f["service_date"] = "BAD:2026-09-31"
    b.label(enc.lines, "INPUT_UNREADABLE_VALUE", k)
    k = S("alt-pa", "Medicaid class line without an authorization number")
    enc = next(e for e in b.encounters if e.lines[0].scenario == clean and e.patient.payer_type == "medicaid"
               and e.lines[0].f["cpt"] in ("98961", "98962"))
    enc.lines[0].f["prior_auth_number"] = ""
    b.label(enc.lines, "PRIOR_AUTH_MISSING", k)
    k = S("alt-no-curriculum", "Class line without a curriculum")
    enc = next(e for e in b.encounters if e.lines[0].scenario == clean and e.patient.payer_type == "commercial"
               and e.lines[0].f["cpt"] in ("98961", "98962"))
    enc.lines[0].f["curriculum_id"] = ""
    b.label(enc.lines, "EDU_CURRICULUM_MISSING", k)
    k = S("alt-pos-2", "Video visit exported as POS '2' (read as 02) without modifier 95")
    p = one("asthma")
    b.label(b.individual_edu(p, day(p), k, rendering="RRT1", pos="2").lines, "TELE_MODIFIER_MISSING", k)
    return b


def us_date(iso: str) -> str:
    if not iso:
        return ""
    if iso.startswith("BAD:"):
        y, m, d = iso[4:].split("-")
        return f"{m}/{d}/{y}"
    return date.fromisoformat(iso).strftime("%m/%d/%Y")


def to_alt_row(ln: Line, n: int) -> dict[str, str]:
    f = ln.f
    row = {ALT_MAPPING[k]: v for k, v in f.items() if k in ALT_MAPPING}
    for k in ("service_date", "submission_date", "order_date"):
        row[ALT_MAPPING[k]] = us_date(f[k])
    row["Payer Class"] = PAYER_CLASS[f["payer_type"]]
    row["Mods"] = ",".join(m for m in f["modifiers"].split(";") if m)
    row["Dx"] = ", ".join(d for d in f["dx_codes"].split(";") if d)
    row["Charge"] = f"${f['charge']}" if f["charge"] else ""
    cpt = f["cpt"]
    row["Visit Type"] = ("Group Class" if cpt in ("98961", "98962") else "Individual Ed" if cpt == "98960"
                         else "DSMT" if cpt.startswith("G01") else "Office Visit" if cpt == "99213" else "PT Visit")
    row["Location"] = "Telehealth" if f["pos"] in ("02", "10", "2") else "Riverside Suite 200"
    row["Batch"] = "B20261001"
    row["Entered By"] = ("FD01", "FD02", "BILL3")[n % 3]
    return row


# -- writing --------------------------------------------------------------------------------------
def csv_text(header: list[str], rows: list[dict[str, str]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({h: r.get(h, "") for h in header})
    return buf.getvalue()


def expected_text(lines: list[Line]) -> str:
    rows = [{"claim_id": ln.f["claim_id"], "line_no": ln.f["line_no"], "rule_ids": ";".join(sorted(ln.rules))}
            for ln in lines]
    return csv_text(["claim_id", "line_no", "rule_ids"], rows)


def catalogue(b: Builder, lines: list[Line]) -> str:
    out = ["| scenario | rule ids | lines (claim_id:line_no) |", "|---|---|---|"]
    for sc in b.scenarios.values():
        if sc.clean:
            continue
        groups: dict[str, list[str]] = {}
        for ln in lines:
            if ln.scenario == sc.key and ln.rules:
                groups.setdefault(";".join(sorted(ln.rules)), []).append(f"{ln.f['claim_id']}:{ln.f['line_no']}")
        if len(groups) == 1:
            refs = ", ".join(next(iter(groups.values())))
        else:  # lines of one scenario that carry different rule sets: say which is which
            refs = "; ".join(f"{', '.join(r)} ({rules.replace(';', ' + ')})" for rules, r in groups.items())
        out.append(f"| {sc.title} | {', '.join(sorted(sc.rules))} | {refs} |")
    return "\n".join(out)


def clean_summary(b: Builder, lines: list[Line]) -> str:
    out = []
    for sc in b.scenarios.values():
        n = sum(1 for ln in lines if ln.scenario == sc.key and not ln.rules)
        if sc.clean:
            out.append(f"- {sc.title}: {n} clean lines")
    n_other = sum(1 for ln in lines if not ln.rules and not b.scenarios[ln.scenario].clean)
    out.append(f"- clean companion lines inside defect scenarios (same claim, not defective): {n_other}")
    return "\n".join(out)


README = """# Sample claim exports

Synthetic data for trying the scrubber and for the end-to-end test `tests/test_samples.py`.

**Provenance.** Every file here is written by `samples/generate.py` (seeded, standard library only).
Nothing comes from a real clinic: patient ids are sequence numbers ({clinic_pids} and
{alt_pids}), provider NPIs are random 9-digit numbers completed with a valid CMS check digit
(Luhn over `80840` + NPI) and belong to no one on purpose, payer ids are labels (no payer profiles
are configured for them), and all dates are in September-December 2026. There is no PHI.
Diagnoses are billable ICD-10-CM codes of the list the scrubber loads (except where a scenario
injects a bad one); taxonomies are real NUCC codes whose classes are in
`rules/tables/taxonomy_classes.csv` (`171M00000X`, case manager, is deliberately unlisted).

## Files

| file | what |
|---|---|
| `clinic_export.csv` | nightly export of a physical-therapy clinic that also runs diabetes, asthma and COPD self-management education: {clinic_n} claim lines, contract headers (plus the `referring_taxonomy` extension column) |
| `expected/clinic_export.expected.csv` | `claim_id,line_no,rule_ids`, one row per input line, in input order: the rules each line was built to trigger (empty = clean) |
| `alt_export.csv` | {alt_n} lines from another practice-management system: different headers, `MM/DD/YYYY` dates, comma-separated modifiers and diagnoses, `$` charges, and extra columns (`Batch`, `Location`, `Visit Type`, `Entered By`) that are carried through |
| `alt_mapping.yaml` | `--mapping` file for it (`canonical_name: "Export Header"`) |
| `expected/alt_export.expected.csv` | expected rule ids for the alternative export |
| `generate.py` | the generator; `python samples/generate.py [--out-dir DIR]` |

The expected files come from the generator's own scenario labels, never from running the scrubber:
a mismatch between them and a run is either a scenario mistake or a rule defect, and is worth
reading. Every line has a `submission_date`, so results do not depend on the day you run them.

## Try it

```
python -m scrubber run samples/clinic_export.csv --out /tmp/scrub-clinic
python -m scrubber run samples/alt_export.csv --mapping samples/alt_mapping.yaml --out /tmp/scrub-alt
```

Both exit with code 1: the samples contain deny findings.

## Regenerate

```
python samples/generate.py            # rewrites the files in samples/
python -m pytest -q tests/test_samples.py
```

The test checks that a fresh run of the generator reproduces the committed files byte for byte.
Edit `generate.py` (not the CSVs) to change a scenario.

## Scenario catalogue: clinic_export.csv

{clinic_clean_pct}% of the lines are clean. Clean scenarios are built to be consistent across lines:
a 98961 class has 2-4 distinct patients billed and `group_size` equal to that count, 98962 5-8;
Medicaid and Medicare Advantage education lines carry a prior authorization number; Medicare
and Medicare Advantage therapy days respect the CMS 8-minute rule on the day's total minutes,
other payers the CPT mid-point per code; Medicare therapy carries GP, a certifying physician and a
plan of care dated within 90 days; 97140 billed with an evaluation, and 97164 billed with 97530,
carry modifier 59; each patient has at most 20 DSMT units, one RTM setup and one device-supply
period; E/M visits are on days without education for that patient; commercial claims are
submitted within days of service.

Clean lines:

{clinic_clean}

Injected defects (each into an otherwise clean scenario):

{clinic_catalogue}

## Scenario catalogue: alt_export.csv

Clean lines:

{alt_clean}

Injected defects:

{alt_catalogue}
"""


def mapping_text() -> str:
    lines = ["# Column mapping for alt_export.csv: canonical_name: \"Export Header\""]
    lines += [f'{k}: "{v}"' for k, v in ALT_MAPPING.items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=HERE, help="where to write the files (default: samples/)")
    args = ap.parse_args(argv)
    out: Path = args.out_dir
    (out / "expected").mkdir(parents=True, exist_ok=True)

    clinic = build_clinic(random.Random(SEED))
    clinic_lines = clinic.assemble("C26", 10001)
    alt = build_alt(random.Random(SEED + 1))
    alt_lines = alt.assemble("RV-", 70001)

    files = {
        "clinic_export.csv": csv_text(CANONICAL_COLUMNS, [ln.f for ln in clinic_lines]),
        "expected/clinic_export.expected.csv": expected_text(clinic_lines),
        "alt_export.csv": csv_text(ALT_HEADERS, [to_alt_row(ln, i) for i, ln in enumerate(alt_lines)]),
        "expected/alt_export.expected.csv": expected_text(alt_lines),
        "alt_mapping.yaml": mapping_text(),
    }
    n_clean = sum(1 for ln in clinic_lines if not ln.rules)
    files["README.md"] = README.format(
        clinic_pids=f"P0001-P{clinic.next_pid - 1:04d}", alt_pids=f"P5001-P{alt.next_pid - 1:04d}",
        clinic_n=len(clinic_lines), alt_n=len(alt_lines),
        clinic_clean_pct=round(100 * n_clean / len(clinic_lines)),
        clinic_clean=clean_summary(clinic, clinic_lines), clinic_catalogue=catalogue(clinic, clinic_lines),
        alt_clean=clean_summary(alt, alt_lines), alt_catalogue=catalogue(alt, alt_lines),
    )
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8", newline="")


if __name__ == "__main__":
    main()

"""Derived fields: facts computed with pandas that rules test like input columns.

The engine tests one line at a time, so anything that spans lines (patients per session,
duplicates, minutes per patient per day), looks something up (NPI check digit, ICD-10-CM,
taxonomy class, diagnosis category) or depends on payer settings is computed here into a named
column. Each family of fields declares what it reads, so `rules explain` can say which data a
rule depends on, and only the families the loaded rules use are computed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from scrubber.claims import mentions, string_array
from scrubber.distinct import distinct_rows
from scrubber.fields import COLUMNS_BY_NAME, FieldType
from scrubber.reference import ReferenceData

T = FieldType


@dataclass(frozen=True)
class DerivedField:
    name: str
    type: FieldType
    description: str
    family: str


@dataclass(frozen=True)
class Family:
    name: str
    reads: tuple[str, ...]  # input columns
    data: tuple[str, ...]  # reference data it consults
    compute: Callable[[pd.DataFrame, DeriveContext], dict[str, pd.Series]]
    fields: tuple[DerivedField, ...]
    # What a family needs to see to be exact: "line" (the line alone), "patient" (every line of the
    # line's patient: duplicates, day totals, same-day codes), "batch" (every line: sessions span
    # patients, claim line keys). Work may be split by patient for the first two only.
    scope: str = "line"
    # For a batch family: the column whose value groups the lines it spans (a session, a claim),
    # so a batch too large for memory can be split by it (stream.py); and whether lines missing it
    # form a group of their own (repeated claim line keys) or each stand alone (no session).
    key: str | None = None
    missing_key_groups: bool = True


@dataclass
class DeriveContext:
    reference: ReferenceData
    run_date: date
    # (payer_type, payer_id) pair of each line, factorized once per frame for `_payer_settings`.
    payer_codes: tuple[np.ndarray, list[tuple[Any, Any]]] | None = None
    # Lines grouped by patient and date (codes, group count), once per frame for the same-day facts.
    patient_days: tuple[np.ndarray, int] | None = None


DERIVED: dict[str, DerivedField] = {}
FAMILIES: dict[str, Family] = {}


SCOPES = ("line", "patient", "batch")


def family(name: str, reads: tuple[str, ...], data: tuple[str, ...], fields: list[tuple[str, FieldType, str]],
           scope: str = "line", key: str | None = None, missing_key_groups: bool = True):
    """Register a function computing a family of derived fields (see Family.scope and key)."""
    assert scope in SCOPES and (key is not None) == (scope == "batch") and (key is None or key in reads)

    def register(fn: Callable[[pd.DataFrame, DeriveContext], dict[str, pd.Series]]):
        specs = tuple(DerivedField(n, t, d, name) for n, t, d in fields)
        FAMILIES[name] = Family(name, reads, data, fn, specs, scope, key, missing_key_groups)
        for spec in specs:
            DERIVED[spec.name] = spec
        return fn

    return register


def export_columns_behind(field: str) -> tuple[str, ...]:
    """The export columns a field's value comes from: itself, or its derived family's inputs
    (none for the reader's own fields, such as unreadable_columns)."""
    if field in COLUMNS_BY_NAME:
        return (field,)
    spec = DERIVED.get(field)
    return FAMILIES[spec.family].reads if spec and spec.family in FAMILIES else ()


def derive(frame: pd.DataFrame, ctx: DeriveContext, wanted: set[str], scopes: tuple[str, ...] = SCOPES) -> pd.DataFrame:
    """Add the derived fields in `wanted` (and their family siblings) of the given scopes to a copy of `frame`."""
    added: dict[str, pd.Series] = {}
    for fam in FAMILIES.values():
        if fam.scope in scopes and any(f.name in wanted for f in fam.fields):
            added.update(fam.compute(frame, ctx))
    # One concat: inserting ~50 columns one by one copies the frame's blocks again and again.
    return pd.concat([frame, pd.DataFrame(added, index=frame.index)], axis=1)


# -- helpers --------------------------------------------------------------------------------------
def _strings(values: np.ndarray, index: pd.Index) -> pd.Series:
    """Text values (str, or None / NA for missing) as a string Series (see claims.string_array:
    a tenth of a shard's derive time when pandas converts them)."""
    return pd.Series(string_array(values), index=index)


def _map_unique(series: pd.Series, fn: Callable[[Any], Any], dtype: str | None = None) -> pd.Series:
    """Apply `fn` once per distinct non-missing value and map the results back to every line."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # An object array filled one by one: pandas' map would turn tuple results into lists.
    results = np.empty(len(uniques) + 1, dtype=object)  # the last slot: missing values
    for i, value in enumerate(uniques):
        results[i] = fn(value)
    return _spread(results, codes, series.index, dtype)


def _spread(values: np.ndarray, codes: np.ndarray, index: pd.Index, dtype: str | None) -> pd.Series:
    """Each line's value by its code into `values` (code -1: the last one), typed as `dtype` (None:
    object). The few values are typed before they are spread: typing per line checks every cell."""
    if dtype is None:
        return pd.Series(values[codes], index=index, dtype=object)
    typed = string_array(values) if dtype == "string" else pd.array(values, dtype=dtype)
    return pd.Series(typed.take(codes), index=index)


def _map_unique_parts(series: pd.Series, fn: Callable[[Any], tuple[Any, ...]], missing: tuple[Any, ...],
                      dtypes: tuple[str | None, ...] | None = None) -> list[Any]:
    """Like _map_unique for a `fn` that returns a tuple: one array per tuple position, every line
    getting its value's results (`missing` where the value is missing), without a Python step per line.
    With `dtypes`, one Series per position instead, typed as its dtype (see _spread)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    results = np.empty((len(missing), len(uniques) + 1), dtype=object)
    for i, value in enumerate(uniques):
        results[:, i] = fn(value)
    results[:, -1] = missing
    if dtypes is not None:
        return [_spread(part, codes, series.index, dtype) for part, dtype in zip(results, dtypes, strict=True)]
    return [part[codes] for part in results]


def _join(items: list[str]) -> str | None:
    return ";".join(items) if items else None


def _items(value: str) -> list[str]:
    return [v for v in value.split(";") if v]


def _in_set(frame: pd.DataFrame, column: str, ctx: DeriveContext, set_name: str) -> pd.Series:
    code_set = ctx.reference.code_sets.get(set_name)
    values = set(code_set.values) if code_set else set()
    return frame[column].isin(values).fillna(False).astype(bool)


def _per_payer(values: pd.Series, frame: pd.DataFrame, ctx: DeriveContext, key: str,
               fn: Callable[[Any, Any], Any], dtype: str) -> pd.Series:
    """fn(value, the line's payer setting `key`), computed once per distinct (value, payer) pair."""
    _payer_settings(frame, ctx, key)  # factorizes the payers once per frame
    assert ctx.payer_codes is not None
    payer_codes, combos = ctx.payer_codes
    settings = [ctx.reference.settings_for(*c).get(key) for c in combos]
    settings.append(ctx.reference.settings_for(None, None).get(key))  # payer code -1: no payer
    value_codes, uniques = pd.factorize(values, use_na_sentinel=True)
    payer = np.where(payer_codes < 0, len(settings) - 1, payer_codes)
    pair_codes, pairs = pd.factorize(value_codes.astype(np.int64) * len(settings) + payer)
    results = [fn(uniques[v] if v >= 0 else None, settings[c])
               for v, c in (divmod(int(pair), len(settings)) for pair in pairs)]
    return pd.Series(pd.array(results, dtype=dtype)[pair_codes], index=frame.index)


def _payer_settings(frame: pd.DataFrame, ctx: DeriveContext, key: str, dtype: str | None = None,
                    convert: Callable[[Any], Any] = lambda value: value) -> pd.Series:
    """Each line's value of one payer setting (defaults < payer type < payer profile), passed
    through `convert` once per distinct payer, as `dtype` (None: object)."""
    if ctx.payer_codes is None:
        payers = frame[["payer_type", "payer_id"]]
        codes, first = distinct_rows([(c, len(u)) for c, u in (pd.factorize(payers[k]) for k in payers.columns)])
        combos = [tuple(None if pd.isna(v) else v for v in payers.iloc[row]) for row in first]
        ctx.payer_codes = (codes, combos)
    codes, combos = ctx.payer_codes
    values = [convert(ctx.reference.settings_for(*c).get(key)) for c in combos]
    lookup = np.empty(len(values) + 1, dtype=object)
    lookup[:-1] = values
    lookup[-1] = convert(ctx.reference.settings_for(None, None).get(key))  # code -1: a missing payer
    return _spread(lookup, codes, frame.index, dtype)


def _submitted(frame: pd.DataFrame, ctx: DeriveContext) -> pd.Series:
    """The submission date, or the run date where the cell is empty. An unreadable date stays
    missing: INPUT_UNREADABLE_VALUE reports it, and no filing delay is made up from the run date."""
    empty = frame["submission_date"].isna()
    if "unreadable_values" in frame.columns:
        empty &= ~mentions(frame["unreadable_values"].astype("string"), "submission_date")
    return frame["submission_date"].mask(empty, pd.Timestamp(ctx.run_date))


def _patient_days(frame: pd.DataFrame, ctx: DeriveContext) -> tuple[np.ndarray, int]:
    """Each line's (patient, service date) group (-1 where either is missing), and the number of groups."""
    if ctx.patient_days is None:
        keys = [pd.factorize(frame[k], use_na_sentinel=True) for k in ("patient_id", "service_date")]
        group, first = distinct_rows([(codes, len(uniques)) for codes, uniques in keys])
        ctx.patient_days = (np.where(np.logical_and.reduce([codes >= 0 for codes, _ in keys]), group, -1), len(first))
    return ctx.patient_days


def _patient_day_groups(frame: pd.DataFrame, ctx: DeriveContext) -> pd.Series:
    """Each line's patient-and-date group for day totals; a line missing either (an unreadable date)
    is a group of its own: it is no day's line, and pooling such lines would total unrelated days."""
    group, count = _patient_days(frame, ctx)
    return pd.Series(np.where(group < 0, count + np.arange(len(group)), group), index=frame.index)


# -- diagnoses ------------------------------------------------------------------------------------
ICD_PATTERN = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")


@family(
    "diagnoses",
    reads=("dx_codes", "claim_id", "patient_id", "service_date", "payer_type", "payer_id"),
    data=("ICD-10-CM releases by fiscal year (simple-icd-10-cm; tables/icd10cm/)", "tables/chronic_conditions.csv",
          "payers.yaml: chronic_conditions"),
    fields=[
        ("dx_codes_judged", T.LIST, "the diagnoses the line is judged on: its own, or when it has none, those of the other "
                                    "lines of its claim (same claim_id and patient), in order"),
        ("dx_from_claim", T.BOOL, "the line has no diagnosis of its own and is judged on its claim's"),
        ("dx_count", T.INT, "number of diagnosis codes the line is judged on (dx_codes_judged)"),
        ("dx_primary", T.TEXT, "the first-listed diagnosis the line is judged on"),
        ("dx_malformed", T.LIST, "diagnosis codes on the line that fail the ICD-10-CM pattern"),
        ("dx_unknown", T.LIST, "well-formed diagnosis codes not in the ICD-10-CM release in force on the service date"),
        ("dx_not_billable", T.LIST, "header codes (with sub-codes, not billable) in the release in force on the service date"),
        ("dx_code_set", T.TEXT, "the ICD-10-CM release the diagnoses were checked against: the one in force on the service date, "
                                "or the newest loaded for a later date (missing: the date precedes every loaded release)"),
        ("dx_code_set_loaded", T.BOOL, "an ICD-10-CM release covering the service date is loaded"),
        ("dx_all_z", T.BOOL, "every diagnosis judged is a Z code (factors influencing health status)"),
        ("dx_has_chronic", T.BOOL, "a diagnosis judged falls in a chronic-condition category the payer accepts"),
        ("dx_categories", T.LIST, "chronic-condition categories of the diagnoses judged"),
    ],
    scope="patient",
)
def _diagnoses(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    prefixes = sorted(
        ((r["prefix"], r["category"]) for r in ctx.reference.tables.get("chronic_conditions.csv", [])),
        key=lambda p: -len(p[0]),
    )

    def analyse(value: str) -> tuple[Any, ...]:
        codes = _items(value)
        cats = sorted({cat for c in codes for p, cat in prefixes if c.startswith(p)})
        return (len(codes), codes[0] if codes else None,
                all(c.startswith("Z") for c in codes) if codes else None, _join(cats))

    judged, from_claim = _judged_diagnoses(frame)
    count, primary, all_z, categories = _map_unique_parts(judged, analyse, missing=(0, None, None, None),
                                                          dtypes=("Int64", "string", "boolean", None))
    malformed = _map_unique(frame["dx_codes"], lambda value: _join([c for c in _items(value) if not ICD_PATTERN.fullmatch(c)]),
                            "string")
    idx = frame.index
    # Missing where the line has no diagnosis at all; "" where it has some but none chronic.
    present = count.to_numpy(dtype=np.int64) > 0
    by_line = categories.fillna("").where(present, None)
    has_chronic = _per_payer(by_line, frame, ctx, "chronic_conditions",
                             lambda cats, accepted: None if cats is None else bool(set(_items(cats)) & set(accepted or ())),
                             "boolean")
    return {
        "dx_codes_judged": judged,
        "dx_from_claim": pd.Series(from_claim, index=idx, dtype="boolean"),
        "dx_count": count,
        "dx_primary": primary,
        "dx_malformed": malformed,
        **_diagnosis_validity(frame, ctx),
        "dx_all_z": all_z,
        "dx_has_chronic": has_chronic,
        "dx_categories": _strings(categories.to_numpy(), idx),
    }


def _judged_diagnoses(frame: pd.DataFrame) -> tuple[pd.Series, np.ndarray]:
    """Each line's diagnoses, or for a line without any, the other lines' of its claim (same
    claim_id and patient), in line order; and where the claim's were taken. An 837 claim carries its
    diagnoses once for every line to point to, and some exports list them on one line only."""
    own = frame["dx_codes"]
    n = len(frame)
    has = _map_unique(own, lambda value: bool(_items(value)), "boolean").fillna(False).to_numpy(dtype=bool)
    none_taken = np.zeros(n, dtype=bool)
    if has.all() or not has.any():
        return own, none_taken
    patients, patient_ids = pd.factorize(frame["patient_id"], use_na_sentinel=True)
    claims, claim_ids = pd.factorize(frame["claim_id"], use_na_sentinel=True)
    claims = np.where(claims < 0, len(claim_ids) + np.arange(n), claims)  # no claim id: the line alone
    group, _ = distinct_rows([(patients, len(patient_ids)), (claims, len(claim_ids) + n)])
    takes = ~has & (np.bincount(group, weights=has) > 0)[group]
    if not takes.any():
        return own, none_taken
    values = own.to_numpy(dtype=object)
    codes_of: dict[int, list[str]] = {}
    for row in np.flatnonzero(has & np.isin(group, group[takes])).tolist():  # lines of the claims that lend codes
        codes = codes_of.setdefault(int(group[row]), [])
        codes += [c for c in _items(values[row]) if c not in codes]
    values[takes] = [";".join(codes_of[int(g)]) for g in group[takes]]
    return _strings(values, frame.index), takes


def _diagnosis_validity(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    """Each line's codes against the ICD-10-CM release in force on its service date.

    A date after the newest loaded release (a new fiscal year whose file is not loaded yet) is
    checked against that newest release, with `dx_code_set_loaded` false: its codes are the best
    evidence there is, and rules tell what it can prove (a header code) from what it cannot (a code
    it lacks may be new). A date before every loaded release is not judged at all: its lists stay
    missing: a code a later year split into sub-codes was billable before the split, so a newer
    release would wrongly call it a header.
    """
    # Filled as object arrays and typed once at the end (a masked Series assignment per release
    # costs more than the checks).
    n = len(frame)
    unknown, not_billable, release = (np.full(n, None, dtype=object) for _ in range(3))
    unjudged = np.ones(n, dtype=bool)  # no release checked the line yet
    service = frame["service_date"]

    def check_against(icd: Any, rows: np.ndarray) -> None:
        def check(value: str) -> tuple[str | None, str | None]:
            wellformed = [c for c in _items(value) if ICD_PATTERN.fullmatch(c)]
            return (_join([c for c in wellformed if c not in icd.valid]),
                    _join([c for c in wellformed if c in icd.valid and c not in icd.billable]))

        unknown[rows], not_billable[rows] = _map_unique_parts(frame.loc[rows, "dx_codes"], check, missing=(None, None))
        release[rows] = icd.name
        unjudged[rows] = False

    for icd in ctx.reference.icd_releases.values():
        in_force = service.between(pd.Timestamp(icd.effective_from), pd.Timestamp(icd.effective_to)).fillna(False)
        in_force = in_force.to_numpy(dtype=bool) & unjudged
        if in_force.any():
            check_against(icd, in_force)
    loaded = pd.arrays.BooleanArray(~unjudged, service.isna().to_numpy())  # missing without a date
    newest = max(ctx.reference.icd_releases.values(), key=lambda r: r.effective_to, default=None)
    if newest is not None:
        later = (service > pd.Timestamp(newest.effective_to)).fillna(False).to_numpy(dtype=bool) & unjudged
        if later.any():
            check_against(newest, later)
    idx = frame.index
    return {"dx_unknown": _strings(unknown, idx), "dx_not_billable": _strings(not_billable, idx),
            "dx_code_set": _strings(release, idx), "dx_code_set_loaded": pd.Series(loaded, index=idx)}


# -- NPI ------------------------------------------------------------------------------------------
def npi_is_valid(npi: str) -> bool:
    """CMS NPI check: 10 digits, first 1 or 2, Luhn over "80840" + NPI (domain.md §5)."""
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit() or npi[0] not in "12":
        return False
    total = 24  # the digits of the implied 80840 prefix
    for i, ch in enumerate(reversed(npi[:9])):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return (10 - total % 10) % 10 == int(npi[9])


@family(
    "npi",
    reads=("rendering_npi", "billing_npi", "referring_npi"),
    data=("CMS NPI check-digit algorithm",),
    fields=[
        ("rendering_npi_valid", T.BOOL, "the rendering NPI passes the CMS format and check digit"),
        ("billing_npi_valid", T.BOOL, "the billing NPI passes the CMS format and check digit"),
        ("referring_npi_valid", T.BOOL, "the referring NPI passes the CMS format and check digit"),
        ("referrer_is_rendering", T.BOOL, "the referring NPI is the rendering provider's own NPI"),
    ],
)
def _npi(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    out = {f"{c}_valid": _map_unique(frame[c], npi_is_valid, "boolean")
           for c in ("rendering_npi", "billing_npi", "referring_npi")}
    both = frame["referring_npi"].notna() & frame["rendering_npi"].notna()
    same = (frame["referring_npi"] == frame["rendering_npi"]).fillna(False)
    out["referrer_is_rendering"] = pd.Series(same.astype(bool), dtype="boolean").where(both, pd.NA)
    return out


# -- providers ------------------------------------------------------------------------------------
@family(
    "providers",
    reads=("rendering_taxonomy", "referring_taxonomy", "payer_type", "payer_id"),
    data=("tables/taxonomy_classes.csv", "payers.yaml: qualified_education_providers, qualified_99078_providers"),
    fields=[
        ("rendering_provider_class", T.TEXT, "provider class of the rendering taxonomy (physician, registered_nurse, ...; other if unlisted)"),
        ("referring_provider_class", T.TEXT, "provider class of the referring taxonomy"),
        ("rendering_qualified_for_education", T.BOOL, "the rendering provider class is on the payer's list qualified for 98960-98962"),
        ("rendering_qualified_for_99078", T.BOOL, "the rendering provider class is on the payer's list of qualified professionals for 99078"),
    ],
)
def _providers(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    rows = sorted(ctx.reference.tables.get("taxonomy_classes.csv", []), key=lambda r: -len(r["prefix"]))

    def classify(taxonomy: str) -> str:
        return next((r["provider_class"] for r in rows if taxonomy.startswith(r["prefix"])), "other")

    rendering = _map_unique(frame["rendering_taxonomy"], classify, "string")
    referring = _map_unique(frame["referring_taxonomy"], classify, "string")
    def listed(setting: str) -> pd.Series:
        return _per_payer(rendering, frame, ctx, setting,
                          lambda cls, classes: None if cls is None else cls in (classes or ()), "boolean")

    return {
        "rendering_provider_class": rendering,
        "referring_provider_class": referring,
        "rendering_qualified_for_education": listed("qualified_education_providers"),
        "rendering_qualified_for_99078": listed("qualified_99078_providers"),
    }


# -- payer settings -------------------------------------------------------------------------------
@family(
    "payer",
    reads=("payer_type", "payer_id", "cpt", "service_date", "submission_date"),
    data=("payers.yaml",),
    fields=[
        ("filing_deadline", T.DATE, "last day to file under the payer's filing limit"),
        ("filing_days_left", T.INT, "days from the submission date (default: run date) to the filing deadline"),
        ("filing_warning_days", T.INT, "the payer's warning window before the filing limit, in days"),
        ("filing_limit", T.TEXT, "the payer's filing limit, e.g. '90 days' or '12 months'"),
        ("prior_auth_required", T.BOOL, "the payer requires a prior authorization for this code"),
        ("telehealth_modifier_required", T.BOOL, "the payer wants 95/93 on telehealth POS 02/10"),
        ("therapy_modifier_required", T.BOOL, "the payer wants GP/GO/GN on therapy codes"),
        ("time_rule", T.TEXT, "how minutes earn units of 30-minute codes: midpoint or full_unit"),
        ("therapy_time_rule", T.TEXT, "how minutes earn units of 15-minute therapy codes: eight_minute or per_code"),
        ("rtm_device_supply_days", T.INT, "days that must pass before the payer pays RTM device supply (98976/98977) again"),
        ("mue_edits", T.BOOL, "the payer applies CMS medically unlikely edits (MUE)"),
    ],
)
def _payer(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    service = frame["service_date"]
    submitted = _submitted(frame, ctx)
    deadline = pd.Series(pd.NaT, index=frame.index, dtype=service.dtype)
    limit_text = pd.Series(pd.NA, index=frame.index, dtype="string")
    # A limit is a one-key mapping {days: N} or {months: N}: as text, "N days" or "N months".
    as_text = _payer_settings(frame, ctx, "filing_limit", "string", lambda limit: next(
        (f"{n} {unit}" for unit, n in limit.items()), None) if limit else None)
    for text in as_text.dropna().unique():
        n, unit = text.split(" ")
        mask = (as_text == text).fillna(False).astype(bool)
        offset = pd.DateOffset(months=int(n)) if unit == "months" else pd.Timedelta(days=int(n))
        deadline[mask] = service[mask] + offset
        limit_text[mask] = text
    days_left = (deadline - submitted).dt.days.astype("Int64")
    pa = _per_payer(frame["cpt"], frame, ctx, "prior_auth_codes",
                    lambda cpt, codes: None if cpt is None else cpt in (codes or ()), "boolean")
    return {
        "filing_deadline": deadline,
        "filing_days_left": days_left,
        "filing_warning_days": _payer_settings(frame, ctx, "filing_warning_days", "Int64"),
        "filing_limit": limit_text,
        "prior_auth_required": pa,
        "telehealth_modifier_required": _payer_settings(frame, ctx, "telehealth_modifier_required", "boolean"),
        "therapy_modifier_required": _payer_settings(frame, ctx, "therapy_modifier_required", "boolean"),
        "time_rule": _payer_settings(frame, ctx, "time_rule", "string"),
        "therapy_time_rule": _payer_settings(frame, ctx, "therapy_time_rule", "string"),
        "rtm_device_supply_days": _payer_settings(frame, ctx, "rtm_device_supply_days", "Int64"),
        "mue_edits": _payer_settings(frame, ctx, "mue_edits", "boolean"),
    }


# -- time and units -------------------------------------------------------------------------------
def units_for_minutes(minutes: pd.Series, unit: pd.Series, threshold: pd.Series) -> pd.Series:
    """Units earned: 0 below the threshold, else floor((m - t) / U) + 1 (domain.md §1.1)."""
    earned = (minutes - threshold) // unit + 1
    # Missing minutes support no number of units at all (missing, not 0: comparisons on it are false).
    return earned.where(minutes >= threshold, 0).where(minutes.notna() & threshold.notna())


@family(
    "time",
    reads=("cpt", "minutes", "units", "patient_id", "service_date", "rendering_npi", "payer_type", "payer_id"),
    data=("tables/timed_codes.csv", "payers.yaml: time_rule, therapy_time_rule"),
    fields=[
        ("timed_code", T.BOOL, "the code is billed per unit of time"),
        ("time_unit_minutes", T.INT, "minutes in one unit of the code (30 or 15)"),
        ("minimum_minutes_for_one_unit", T.INT, "minutes the line needs for its first unit under the payer's rule"),
        ("units_supported_by_minutes", T.INT, "units the line's minutes support under the payer's per-line rule"),
        ("code_day_minutes", T.INT, "minutes of the line's code for the patient, date and provider, all lines added up "
                                    "(per-code payers; missing if a line lacks minutes)"),
        ("code_day_units", T.INT, "units of the line's code for the patient, date and provider (per-code payers)"),
        ("code_day_units_supported", T.INT, "units code_day_minutes support under the payer's per-code rule"),
        ("day_timed_minutes", T.INT, "minutes of 15-minute therapy codes for the patient, date and provider (8-minute rule payers)"),
        ("day_timed_units", T.INT, "units of 15-minute therapy codes for the patient, date and provider (8-minute rule payers)"),
        ("day_timed_units_allowed", T.INT, "units the day's total minutes support under the CMS 8-minute rule"),
        ("day_code_timed_minutes", T.INT, "minutes of the line's 15-minute code for the patient, date and provider (8-minute rule payers)"),
        ("day_code_timed_units", T.INT, "units of the line's 15-minute code for the patient, date and provider (8-minute rule payers)"),
        ("day_code_units_share", T.INT, "the most units of day_timed_units_allowed the line's code can be given: its full 15 minutes "
                                        "first, then the day's remaining units to the codes with the most minutes left over; where "
                                        "another code's minutes are missing, the most any day gives it: a unit per started 15 minutes"),
        ("timed_units_over_share", T.BOOL, "the line's code is billed for more units than its share, or the day is billed over "
                                           "its allowed units and the code takes one of the units codes with equal leftover minutes compete for"),
    ],
    scope="patient",
)
def _time(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    table = {r["cpt"]: int(r["unit_minutes"]) for r in ctx.reference.tables.get("timed_codes.csv", [])}
    unit = _map_unique(frame["cpt"], table.get, "Int64")
    # The payers' rules compared once per distinct payer, not per line.
    full = _payer_settings(frame, ctx, "time_rule", "boolean", lambda rule: rule == "full_unit").astype(bool)
    eight_minute = _payer_settings(frame, ctx, "therapy_time_rule", "boolean", lambda rule: rule == "eight_minute")
    is30, is15 = unit == 30, unit == 15
    eight = (is15 & eight_minute).fillna(False).astype(bool)
    # Mid-point: t = floor(U/2) + 1 (16 for 30 minutes, 8 for 15); full unit: t = U.
    threshold = (unit // 2 + 1).where(~(is30 & full).fillna(False), unit).where(~eight, pd.NA).astype("Int64")
    def supported(minutes: pd.Series) -> pd.Series:
        """Units `minutes` of the line's code support under the payer's per-code rule."""
        earned = units_for_minutes(minutes, unit, threshold).where(~(is30.fillna(False) & full), minutes // unit)
        return earned.where(threshold.notna()).astype("Int64")

    per_line = supported(frame["minutes"])
    # The per-code rule counts each code's minutes of the day: 97110 for 12 minutes on one line and
    # 10 on another is 22 minutes, one unit, however the lines are split.
    code_day_minutes = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    code_day_units = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    per_code = threshold.notna().to_numpy(dtype=bool)
    # Only the columns read below: a row selection of the whole frame would copy every column.
    lines = frame[["rendering_npi", "cpt", "minutes", "units"]].assign(patient_day=_patient_day_groups(frame, ctx))
    if per_code.any():
        keys = ["patient_day", "rendering_npi", "cpt"]
        grouped = lines.loc[per_code, [*keys, "minutes", "units"]].groupby(keys, dropna=False, sort=False)
        complete = (grouped["minutes"].transform("count") == grouped["minutes"].transform("size")).astype(bool)
        code_day_minutes[per_code] = grouped["minutes"].transform("sum").where(complete).array
        code_day_units[per_code] = grouped["units"].transform("sum").array

    day = {name: pd.Series(pd.NA, index=frame.index, dtype="Int64") for name in _EIGHT_MINUTE_FIELDS}
    over_share = pd.Series(pd.NA, index=frame.index, dtype="boolean")
    if eight.any():
        for name, values in _eight_minute_day(lines.loc[eight]).items():
            # By mask, with the values' array: pandas 3 fails to set Int64 values holding <NA> by labels.
            (over_share if name == "timed_units_over_share" else day[name])[eight] = values.array
    return {
        "timed_code": unit.notna().astype("boolean"),
        "time_unit_minutes": unit,
        "minimum_minutes_for_one_unit": threshold,
        "units_supported_by_minutes": per_line,
        "code_day_minutes": code_day_minutes,
        "code_day_units": code_day_units,
        "code_day_units_supported": supported(code_day_minutes),
        **day,
        "timed_units_over_share": over_share,
    }


_EIGHT_MINUTE_FIELDS = ("day_timed_minutes", "day_timed_units", "day_timed_units_allowed",
                        "day_code_timed_minutes", "day_code_timed_units", "day_code_units_share")


def _eight_minute_day(lines: pd.DataFrame) -> dict[str, pd.Series]:
    """The CMS 8-minute rule over the 15-minute lines of each patient, date and provider.

    The day's total minutes decide the units (8-22 = 1, 23-37 = 2, ...); each code first gets a unit
    for every full 15 minutes, and the units left go to the codes with the most minutes left over
    (CMS Claims Processing Manual Ch. 5 §20.2: 33 minutes of 97110 and 7 of 97140 are 2 + 1 units).
    Codes with equal leftover minutes may each take a remaining unit (either may be billed): the day
    is then over only if they take more than are left. The day's fields are missing where a line of
    the day lacks minutes; a code whose own minutes are all known still has a share, the most any
    other minutes could give it: a unit per started 15 minutes (leftover minutes under 15 each earn
    the day at most one unit between them, and a code takes at most one of those)."""
    day_keys = ["patient_day", "rendering_npi"]
    work = lines[[*day_keys, "cpt", "minutes", "units"]]
    day_group = work.groupby(day_keys, dropna=False, sort=False).ngroup().to_numpy()
    code_group = work.groupby([*day_keys, "cpt"], dropna=False, sort=False).ngroup().to_numpy()
    by_day, by_code = work.groupby(day_group), work.groupby(code_group)
    complete = (by_day["minutes"].transform("count") == by_day["minutes"].transform("size")).astype(bool)
    day_minutes = by_day["minutes"].transform("sum").where(complete)
    allowed = units_for_minutes(day_minutes, pd.Series(15, index=work.index), pd.Series(8, index=work.index))
    # Per code (one row each): its minutes and units, full units, leftover minutes.
    first = np.unique(code_group, return_index=True)[1]
    code_day = day_group[first]
    code_complete = (by_code["minutes"].count() == by_code["minutes"].size()).to_numpy()
    code_minutes = by_code["minutes"].sum(min_count=1).where(code_complete).to_numpy(dtype="float64", na_value=np.nan)
    code_units = by_code["units"].sum().to_numpy(dtype="float64", na_value=np.nan)
    full = code_minutes // 15
    left_over = code_minutes - 15 * full
    code_allowed = allowed.to_numpy(dtype="float64", na_value=np.nan)[first]
    remaining = code_allowed - pd.Series(full).groupby(code_day).transform("sum").to_numpy()
    # Codes with more minutes left over than this one: fewer than the remaining units, and it may
    # take one of them; with its equals too, and all of them may (otherwise it ties for the last).
    left = pd.Series(left_over).groupby(code_day)
    more_left = left.rank(method="min", ascending=False).to_numpy() - 1
    as_many_left = left.rank(method="max", ascending=False).to_numpy()
    share = full + (more_left < remaining)
    tied = (more_left < remaining) & (as_many_left > remaining)
    over = code_units > share
    day_over = pd.Series(code_units).groupby(code_day).transform("sum").to_numpy() > code_allowed
    none_over = ~pd.Series(over).groupby(code_day).transform("any").to_numpy(dtype=bool)
    over |= day_over & none_over & tied & (code_units > full)  # equal leftovers took more units than are left
    known = ~np.isnan(code_allowed)
    bound = np.ceil(code_minutes / 15)  # a day with minutes missing elsewhere: the most it could give the code
    share = np.where(known, share, bound)
    over = np.where(known, over, code_units > bound)
    known |= ~np.isnan(code_minutes)

    def per_line(values: np.ndarray) -> pd.Series:
        return pd.Series(values[code_group], index=work.index)

    return {
        "day_timed_minutes": day_minutes.astype("Int64"),
        "day_timed_units": by_day["units"].transform("sum").astype("Int64"),
        "day_timed_units_allowed": allowed.astype("Int64"),
        "day_code_timed_minutes": per_line(code_minutes).astype("Int64"),
        "day_code_timed_units": per_line(code_units).astype("Int64"),
        "day_code_units_share": per_line(np.where(known, share, np.nan)).astype("Int64"),
        "timed_units_over_share": per_line(np.where(known, over, np.nan)).astype("boolean"),
    }


# -- education groups -----------------------------------------------------------------------------
@family(
    "sessions",
    reads=("cpt", "group_size", "session_id", "service_date", "patient_id"),
    data=("tables/education_group_codes.csv",),
    fields=[
        ("edu_min_patients", T.INT, "fewest patients the billed education code allows"),
        ("edu_max_patients", T.INT, "most patients the billed education code allows"),
        ("edu_code_for_group_size", T.TEXT, "the education code that fits the documented group size"),
        ("session_patient_count", T.INT, "distinct patients with a line (any code) in the session on the date in this batch"),
        ("edu_code_for_session_count", T.TEXT, "the education code that fits the patients billed for the session"),
        ("session_edu_codes", T.LIST, "distinct education codes billed for the session and date"),
        ("session_edu_code_count", T.INT, "number of distinct education codes billed for the session and date"),
        ("session_group_size_count", T.INT, "number of distinct group sizes documented on the session's education lines"),
    ],
    scope="batch",
    key="session_id",
    missing_key_groups=False,  # a line without a session is counted in none
)
def _sessions(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    rows = ctx.reference.tables.get("education_group_codes.csv", [])
    low = _map_unique(frame["cpt"], {r["cpt"]: int(r["min_patients"]) for r in rows}.get, "Int64")
    high = _map_unique(frame["cpt"], {r["cpt"]: int(r["max_patients"]) for r in rows}.get, "Int64")

    def code_for(count: pd.Series) -> pd.Series:
        def fitting(n: int) -> str | None:  # the table's last code whose range holds n
            return next((r["cpt"] for r in reversed(rows) if int(r["min_patients"]) <= n <= int(r["max_patients"])), None)
        return _map_unique(count, fitting, "string")

    count = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    codes = pd.Series(pd.NA, index=frame.index, dtype="string")
    n_codes = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    n_sizes = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    has_session = frame["session_id"].notna() & frame["service_date"].notna()  # a session is one date
    if has_session.any():
        # Patients are counted on every line of the session: a class billed 98962 to some payers and
        # G0109 to Medicare is one group.
        attended = frame.loc[has_session, ["session_id", "service_date", "patient_id"]]
        count[has_session] = attended.groupby(["session_id", "service_date"], sort=False)["patient_id"].transform("nunique").array
    in_session = low.notna() & has_session  # the education codes billed for the session
    if in_session.any():
        sub = frame.loc[in_session, ["session_id", "service_date", "patient_id", "cpt", "group_size"]]
        grouped = sub.groupby(["session_id", "service_date"], sort=False)
        # The distinct codes of each session, sorted and joined: one sort, then a join per run.
        group = grouped.ngroup()
        pairs = pd.DataFrame({"g": group, "cpt": sub["cpt"]}).dropna().drop_duplicates().sort_values(["g", "cpt"])
        g = pairs["g"].to_numpy()
        cpts = pairs["cpt"].tolist()
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
        ends = [*starts[1:].tolist(), len(g)]
        by_group = {int(g[a]): ";".join(cpts[a:b]) for a, b in zip(starts.tolist(), ends, strict=True)}
        codes[in_session] = group.map(by_group).astype("string").array
        n_codes[in_session] = grouped["cpt"].transform("nunique").array
        n_sizes[in_session] = grouped["group_size"].transform("nunique").array
    return {
        "edu_min_patients": low,
        "edu_max_patients": high,
        "edu_code_for_group_size": code_for(frame["group_size"]),
        "session_patient_count": count,
        "edu_code_for_session_count": code_for(count),
        "session_edu_codes": codes,
        "session_edu_code_count": n_codes,
        "session_group_size_count": n_sizes,
    }


# -- duplicates -----------------------------------------------------------------------------------
_SERVICE = ("patient_id", "service_date", "cpt", "units", "rendering_npi")  # and the modifiers, in any order


def _services(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines grouped by the service they bill: (service group of each line, first line of each
    group, whether the line has every part of the service key)."""
    mods = _map_unique(frame["modifiers"], lambda m: ";".join(sorted(_items(m))))
    keys = [frame[c] for c in _SERVICE]
    complete = np.logical_and.reduce([k.notna().to_numpy() for k in keys])
    group, first = distinct_rows([(codes, len(uniques)) for codes, uniques in
                                  (pd.factorize(k, use_na_sentinel=True) for k in [*keys, mods])])
    return group, first, complete


@family(
    "duplicates",
    reads=("claim_id", "line_no", *_SERVICE, "modifiers"),
    data=(),
    fields=[
        ("duplicate_of", T.TEXT, "claim_id:line_no of an earlier line with the same patient, date, code, modifiers, units and rendering NPI"),
    ],
    scope="patient",
)
def _duplicates(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    group, first, complete = _services(frame)
    first_pos = first[group]  # the first line of each line's group
    earlier = (first_pos != np.arange(len(frame))) & complete
    # The label of the earlier line, built only for the duplicates.
    source = first_pos[earlier]
    label = (frame["claim_id"].iloc[source].astype("string").fillna("?") + ":"
             + frame["line_no"].iloc[source].astype("string").fillna("?"))
    values = np.full(len(frame), None, dtype=object)
    values[earlier] = label.to_numpy(dtype=object)
    return {"duplicate_of": _strings(values, frame.index)}


@family(
    "line_keys",
    reads=("claim_id", "line_no", *_SERVICE, "modifiers"),
    data=(),
    fields=[("line_key_count", T.INT, "how many lines in the batch share this line's claim_id and line_no"),
            ("line_key_services", T.INT, "how many different services (patient, date, code, modifiers, units, "
                                         "rendering NPI) those lines bill")],
    scope="batch",
    key="claim_id",
)
def _line_keys(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    key = frame.groupby(["claim_id", "line_no"], dropna=False, sort=False).ngroup().to_numpy()
    count = np.bincount(key, minlength=1)[key] if len(key) else np.zeros(0, dtype=np.int64)
    service, _, _ = _services(frame)
    keys = int(key.max(initial=-1)) + 1
    _, first = distinct_rows([(key, keys), (service, int(service.max(initial=-1)) + 1)])  # (key, service) pairs
    services = np.bincount(key[first], minlength=keys)[key]  # each key's number of pairs
    return {"line_key_count": pd.Series(count, index=frame.index, dtype="Int64"),
            "line_key_services": pd.Series(services, index=frame.index, dtype="Int64")}


# -- same-day bundling ----------------------------------------------------------------------------
@family(
    "bundling",
    reads=("patient_id", "service_date", "billing_npi", "cpt", "modifiers"),
    data=("code_sets.yaml: em_codes", "tables/ncci_ptp_therapy.csv"),
    fields=[
        ("same_day_em_code", T.TEXT, "an E/M code billed for the same patient, date and billing NPI"),
        ("ncci_column1_code", T.TEXT, "a column-1 code of an NCCI PTP pair billed for the same patient and date, when this line is its column-2 code"),
        ("ncci_modifier_indicator", T.TEXT, "that pair's NCCI modifier indicator: 0 never bypassed, 1 bypassed by 59/X modifiers, 9 not applicable"),
    ],
    scope="patient",
)
def _bundling(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    is_em = _in_set(frame, "cpt", ctx, "em_codes").to_numpy()
    same_day_em = pd.Series(pd.NA, index=frame.index, dtype="string")
    if is_em.any():
        # Each line's (patient, date, billing NPI) group gets the code of the group's first E/M line.
        day, days = _patient_days(frame, ctx)
        npi, npis = pd.factorize(frame["billing_npi"], use_na_sentinel=True)
        group, _ = distinct_rows([(day, days), (npi, len(npis))])
        complete = (day >= 0) & (npi >= 0)
        em_rows = np.flatnonzero(is_em & complete)
        em_groups, first = np.unique(group[em_rows], return_index=True)
        code_of_group = np.full(int(group.max()) + 1, None, dtype=object)
        code_of_group[em_groups] = frame["cpt"].to_numpy(dtype=object)[em_rows[first]]
        same_day_em = _strings(np.where(complete, code_of_group[group], None), frame.index)

    column1, indicator = _ncci_column1(frame, ctx)
    return {"same_day_em_code": same_day_em, "ncci_column1_code": column1, "ncci_modifier_indicator": indicator}


def _ncci_column1(frame: pd.DataFrame, ctx: DeriveContext) -> tuple[pd.Series, pd.Series]:
    """For a column-2 line of an NCCI pair in force on its date: the first column-1 code (in the
    table's order) billed for the same patient and date, and that pair's modifier indicator."""
    column1 = np.full(len(frame), None, dtype=object)
    indicator = np.full(len(frame), None, dtype=object)
    pairs = ctx.reference.tables.get("ncci_ptp_therapy.csv", [])
    day, _ = _patient_days(frame, ctx)
    cpt_codes, cpts = pd.factorize(frame["cpt"], use_na_sentinel=True)
    complete = (day >= 0) & (cpt_codes >= 0)
    # (patient and date, code) of every billed line, as one number.
    billed = np.unique(day[complete] * (len(cpts) + 1) + cpt_codes[complete])
    code_of = {code: i for i, code in enumerate(cpts)}
    service = frame["service_date"]
    open_ = np.ones(len(frame), dtype=bool)  # no pair found yet: the table's first match wins
    for pair in pairs:
        second, first = code_of.get(pair["column2"]), code_of.get(pair["column1"])
        if second is None or first is None:
            continue
        start = pd.Timestamp(pair["effective_from"] or "1900-01-01")
        end = pd.Timestamp(pair["effective_to"] or "2999-12-31")
        in_force = service.between(start, end).fillna(False).to_numpy(dtype=bool)
        rows = np.flatnonzero(complete & open_ & (cpt_codes == second) & in_force)
        wanted = day[rows] * (len(cpts) + 1) + first
        at = np.minimum(np.searchsorted(billed, wanted), len(billed) - 1)  # billed is sorted: no hash set per pair
        rows = rows[billed[at] == wanted]
        column1[rows] = pair["column1"]
        indicator[rows] = pair["modifier_indicator"]
        open_[rows] = False
    return _strings(column1, frame.index), _strings(indicator, frame.index)


# -- frequency ------------------------------------------------------------------------------------
@family(
    "frequency",
    reads=("patient_id", "service_date", "cpt", "units"),
    data=("code_sets.yaml: therapy_eval_codes, dsmt_codes",),
    fields=[
        ("eval_units_day", T.INT, "units of PT evaluation codes (97161-97164) for the patient and date"),
        ("dsmt_period", T.TEXT, "the DSMT (G0108/G0109) benefit period of the line: the patient's initial 12 months from their "
                                "first DSMT service in this batch, then each later calendar year (follow-up)"),
        ("dsmt_units_to_date", T.INT, "DSMT units of the patient in the line's period up to and including this line (date order)"),
        ("dsmt_units_allowed", T.INT, "Medicare's DSMT units for the period: 20 (10 hours) initial, 4 (2 hours) follow-up"),
    ],
    scope="patient",
)
def _frequency(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    def total(mask: pd.Series, keys: list[pd.Series]) -> pd.Series:
        out = pd.Series(pd.NA, index=frame.index, dtype="Int64")
        if mask.any():
            sub = frame.loc[mask, "units"]
            out[mask] = sub.groupby([k[mask] for k in keys], dropna=False, sort=False).transform("sum")
        return out

    return {
        "eval_units_day": total(_in_set(frame, "cpt", ctx, "therapy_eval_codes"), [_patient_day_groups(frame, ctx)]),
        **_dsmt_periods(frame, _in_set(frame, "cpt", ctx, "dsmt_codes") & frame["service_date"].notna()),
    }


DSMT_INITIAL_UNITS, DSMT_FOLLOW_UP_UNITS = 20, 4  # 10 hours, then 2 hours a year, in 30-minute units (domain.md §2.4)


def _dsmt_periods(frame: pd.DataFrame, dsmt: pd.Series) -> dict[str, pd.Series]:
    """Medicare's DSMT benefit: 10 hours within a continuous 12 months of initial training, then 2
    hours each later calendar year. The batch's first DSMT service of a patient opens the initial
    12 months (earlier services are not in the batch); units accumulate in date order, input order
    breaking ties, so the lines past the limit are the ones reported."""
    period = pd.Series(pd.NA, index=frame.index, dtype="string")
    to_date = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    allowed = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    if dsmt.any():
        sub = frame.loc[dsmt, ["patient_id", "service_date", "units"]].sort_values("service_date", kind="stable")
        first = sub.groupby("patient_id", dropna=False, sort=False)["service_date"].transform("min")
        initial = (sub["service_date"] < first + pd.DateOffset(years=1)).to_numpy()
        year = sub["service_date"].dt.year.astype(str)
        sub_period = pd.Series(np.where(initial, "initial training (12 months from " + first.dt.strftime("%Y-%m-%d") + ")",
                                        "follow-up training in " + year), index=sub.index)
        units = sub["units"].fillna(0)
        sub_to_date = units.groupby([sub["patient_id"], sub_period], dropna=False, sort=False).cumsum()
        period[sub.index] = sub_period.array
        to_date[sub.index] = sub_to_date.array
        allowed[sub.index] = np.where(initial, DSMT_INITIAL_UNITS, DSMT_FOLLOW_UP_UNITS)
    return {"dsmt_period": period, "dsmt_units_to_date": to_date, "dsmt_units_allowed": allowed}


@family(
    "repeats",
    reads=("patient_id", "cpt", "service_date"),
    data=(),
    fields=[
        ("days_since_same_code", T.INT, "days since the patient's previous line with the same code in this batch (0 = same day)"),
    ],
    scope="patient",
)
def _repeats(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    # Sorting by date (stable, so input order breaks ties) makes "previous" independent of the
    # order lines arrive in; the first service of a patient and code has no previous one.
    keys = ["patient_id", "cpt"]
    complete = frame[[*keys, "service_date"]].notna().all(axis=1)
    sub = frame.loc[complete, [*keys, "service_date"]].sort_values("service_date", kind="stable")
    gap = sub.groupby(keys, sort=False)["service_date"].diff().dt.days
    return {"days_since_same_code": gap.astype("Int64").reindex(frame.index)}


# -- medically unlikely edits --------------------------------------------------------------------
MUE_LINE, MUE_DAY = "this line", "every line of this code for the patient on the date from this billing NPI"


@family(
    "mue",
    reads=("cpt", "units", "patient_id", "service_date", "billing_npi"),
    data=("CMS practitioner MUE files (tables/mue/)",),
    fields=[
        ("mue_value", T.INT, "the code's MUE (most units for one patient on one date) in the CMS practitioner MUE file in "
                             "force on the service date; missing when no file covers the date or the code has no published MUE"),
        ("mue_adjudication", T.INT, "the code's MUE adjudication indicator: 1 per claim line, 2 (policy) or 3 (clinical) per date of service"),
        ("mue_units", T.INT, "the units counted against the MUE: the line's for indicator 1; for 2 and 3, the code's units "
                             "for the patient on the date from the same billing NPI, across the batch"),
        ("mue_counted", T.TEXT, f"what mue_units counts: '{MUE_LINE}' or '{MUE_DAY}'"),
        ("mue_file", T.TEXT, "the MUE file the line was checked against"),
    ],
    scope="patient",
)
def _mue(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    n, idx = len(frame), frame.index
    if not ctx.reference.mue_releases:  # no file loaded (the bundled pack has none): nothing to look up
        missing = pd.Series(pd.NA, index=idx, dtype="Int64")
        return {"mue_value": missing, "mue_adjudication": missing, "mue_units": missing,
                "mue_counted": pd.Series(pd.NA, index=idx, dtype="string"), "mue_file": pd.Series(pd.NA, index=idx, dtype="string")}
    value, indicator, file = np.full(n, None, dtype=object), np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    releases = sorted(ctx.reference.mue_releases.values(), key=lambda r: r.effective_from)
    service = frame["service_date"]
    for release, following in zip(releases, [*releases[1:], None], strict=True):
        in_force = service >= pd.Timestamp(release.effective_from)
        if following is not None:  # a file is in force until the next one takes effect
            in_force &= service < pd.Timestamp(following.effective_from)
        rows = in_force.fillna(False).to_numpy(dtype=bool)
        if rows.any():
            listed = _map_unique_parts(frame.loc[rows, "cpt"], lambda code: release.values.get(code, (None, None)),
                                       missing=(None, None))
            value[rows], indicator[rows] = listed
            file[rows] = np.where(pd.isna(listed[0]), None, release.name)
    value_s = pd.Series(value, index=idx, dtype="Int64")
    indicator_s = pd.Series(indicator, index=idx, dtype="Int64")
    units = frame["units"]
    counted = units.copy()
    per_day = (indicator_s.isin([2, 3]) & frame["patient_id"].notna() & service.notna()).to_numpy(dtype=bool)
    if per_day.any():
        keys = frame.loc[per_day, ["patient_id", "service_date", "cpt", "billing_npi"]]
        totals = units[per_day].groupby([keys[k] for k in keys.columns], dropna=False, sort=False).transform("sum")
        counted = counted.where(~per_day, totals.reindex(idx))
    has_value = value_s.notna().to_numpy(dtype=bool)
    what = np.where(per_day, MUE_DAY, MUE_LINE).astype(object)
    what[~has_value] = None
    return {
        "mue_value": value_s,
        "mue_adjudication": indicator_s,
        "mue_units": counted.astype("Int64").where(has_value, pd.NA),
        "mue_counted": _strings(what, idx),
        "mue_file": _strings(file, idx),
    }


@family(
    "device_supply",
    reads=("patient_id", "cpt", "service_date", "payer_type", "payer_id"),
    data=("code_sets.yaml: rtm_device_codes", "payers.yaml: rtm_device_supply_days"),
    fields=[
        ("days_since_paid_supply", T.INT, "RTM device supply (98976/98977): days since the patient's previous line of the same code "
                                          "that opened a payable period (one not within rtm_device_supply_days of the one before it)"),
    ],
    scope="patient",
)
def _device_supply(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    # A line billed too soon will be denied, so it opens no period: the next one counts from the
    # last payable line (supply on 03-01, 03-16, 04-01: 04-01 is 31 days after 03-01, payable).
    days = np.zeros(len(frame), dtype=np.int64)
    known = np.zeros(len(frame), dtype=bool)
    rows = (_in_set(frame, "cpt", ctx, "rtm_device_codes") & frame["patient_id"].notna()
            & frame["service_date"].notna()).to_numpy(dtype=bool)
    if rows.any():
        at = np.flatnonzero(rows)
        sub = frame[["patient_id", "cpt", "service_date"]].iloc[at]
        period = _payer_settings(frame, ctx, "rtm_device_supply_days").to_numpy()[at]
        patient = pd.factorize(sub["patient_id"])[0]
        code = pd.factorize(sub["cpt"])[0]
        day = sub["service_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
        order = np.lexsort((day, code, patient))  # by patient and code, then date (stable: input order breaks ties)
        opened, previous = 0, None
        for i in order.tolist():  # one step per RTM supply line, which are few
            key = (patient[i], code[i])
            if key != previous:
                previous, opened = key, day[i]
                continue
            days[at[i]], known[at[i]] = day[i] - opened, True
            if day[i] - opened >= int(period[i]):
                opened = day[i]
    return {"days_since_paid_supply": pd.Series(pd.arrays.IntegerArray(days, ~known), index=frame.index)}


# -- orders ---------------------------------------------------------------------------------------
@family(
    "orders",
    reads=("order_date", "service_date"),
    data=(),
    fields=[("days_from_order_to_service", T.INT, "days from the order / plan-of-care certification date to the service date")],
)
def _orders(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    return {"days_from_order_to_service": (frame["service_date"] - frame["order_date"]).dt.days.astype("Int64")}


@family(
    "dates",
    reads=("service_date", "submission_date"),
    data=(),
    fields=[("days_from_service_to_submission", T.INT, "days from the service date to the submission date (default: run date); negative = service in the future")],
)
def _dates(frame: pd.DataFrame, ctx: DeriveContext) -> dict[str, pd.Series]:
    submitted = _submitted(frame, ctx)
    return {"days_from_service_to_submission": (submitted - frame["service_date"]).dt.days.astype("Int64")}


# -- input problems -------------------------------------------------------------------------------
# Filled by the reader (claims.py), which is where unreadable values are found; registered here
# so that rules may test them like any other field.
INPUT_PROBLEM_FIELDS = {
    "unreadable_values": (T.TEXT, "the columns whose values cannot be read, with the reason"),
    "unreadable_columns": (T.LIST, "the names of those columns (a rule tells an unreadable value from an empty one by it)"),
    "missing_required": (T.TEXT, "required columns that are empty on this line"),
}
for _name, (_type, _doc) in INPUT_PROBLEM_FIELDS.items():
    DERIVED[_name] = DerivedField(_name, _type, _doc, "input")

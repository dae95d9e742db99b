"""Reference data under `rules/`: named code sets, payer settings and code tables.

Everything that differs by payer or changes with the code-set calendar is data here, not Python.
Several rule folders can be layered (`--rules` given more than once): a later folder's code set
or table replaces the earlier one of the same name, and its payer settings are merged over the
earlier ones key by key.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from scrubber import yamlfile
from scrubber.errors import ConfigProblem, ScrubberError
from scrubber.fields import PAYER_TYPES

PAYER_SETTINGS: dict[str, str] = {
    "filing_limit": "{days: N} or {months: N}: the timely filing limit",
    "filing_warning_days": "days before the filing limit at which a line is at risk",
    "time_rule": "midpoint or full_unit: how minutes earn units of 30-minute codes",
    "therapy_time_rule": "eight_minute or per_code: how minutes earn units of 15-minute therapy codes",
    "telehealth_modifier_required": "true or false: POS 02/10 must carry 95/93",
    "therapy_modifier_required": "true or false: therapy codes must carry GP/GO/GN",
    "prior_auth_codes": "codes that need a prior authorization number",
    "qualified_education_providers": "provider classes qualified to render 98960-98962",
    "qualified_99078_providers": "provider classes accepted as physicians or other qualified health care professionals on 99078",
    "mue_edits": "true or false: the payer applies CMS medically unlikely edits (tables/mue/)",
    "rtm_device_supply_days": "days that must pass before RTM device supply (98976/98977) is billed again",
    "chronic_conditions": "condition categories that show an established condition",
    "rule_severity": "{RULE_ID: deny|at-risk}: severity overrides for this payer",
    "payer_type": "the payer type this payer_id belongs to (payer profiles only)",
}
_ENUM_SETTINGS = {
    "time_rule": ("midpoint", "full_unit"),
    "therapy_time_rule": ("eight_minute", "per_code"),
}
_BOOL_SETTINGS = ("telehealth_modifier_required", "therapy_modifier_required", "mue_edits")
_LIST_SETTINGS = ("prior_auth_codes", "qualified_education_providers", "qualified_99078_providers", "chronic_conditions")
_DAY_SETTINGS = {"filing_warning_days": 0, "rtm_device_supply_days": 1}  # setting: the fewest days it may be

# What each table cell must hold, by column (cells of other columns are free text).
_CELL_CHECKS: dict[str, tuple[str, Any]] = {
    "unit_minutes": ("15 or 30 (the minutes of one unit: the two time rules there are)", lambda v: v in ("15", "30")),
    "min_patients": ("a whole number", lambda v: v.isdigit()),
    "max_patients": ("a whole number", lambda v: v.isdigit()),
    "modifier_indicator": ("0, 1 or 9 (NCCI: 0 never bypassed, 1 bypassed by 59/X, 9 not applicable)", lambda v: v in ("0", "1", "9")),
    "effective_from": ("a date YYYY-MM-DD or empty", lambda v: v == "" or _is_date(v)),
    "effective_to": ("a date YYYY-MM-DD or empty", lambda v: v == "" or _is_date(v)),
    "prefix": ("a code prefix of letters and digits", lambda v: v.isalnum()),
    "cpt": ("a 5-character CPT/HCPCS code", lambda v: len(v) == 5 and v.isalnum()),
    "column1": ("a 5-character CPT/HCPCS code", lambda v: len(v) == 5 and v.isalnum()),
    "column2": ("a 5-character CPT/HCPCS code", lambda v: len(v) == 5 and v.isalnum()),
    "payer_type": (f"one of {', '.join(PAYER_TYPES)}", lambda v: v in PAYER_TYPES),
    "per_unit_low": ("an amount in dollars (0 or more, e.g. 25 or 31.50)", lambda v: _is_amount(v)),
    "per_unit_high": ("an amount in dollars (0 or more, e.g. 40 or 47.20)", lambda v: _is_amount(v)),
}


def _is_amount(text: str) -> bool:
    return re.fullmatch(r"[0-9]+(\.[0-9]{1,2})?", text) is not None


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


TABLES: dict[str, tuple[str, ...]] = {
    "taxonomy_classes.csv": ("prefix", "provider_class", "display", "source"),
    "chronic_conditions.csv": ("prefix", "category", "display", "source"),
    "timed_codes.csv": ("cpt", "unit_minutes", "kind", "source"),
    "education_group_codes.csv": ("cpt", "min_patients", "max_patients", "source"),
    "ncci_ptp_therapy.csv": ("column1", "column2", "modifier_indicator", "effective_from", "effective_to", "source"),
    # Dollars at risk for flagged lines without a charge (reports only; no rule reads it).
    "expected_payment.csv": ("payer_type", "cpt", "per_unit_low", "per_unit_high", "source"),
}
# The columns naming a table's row: two rows with the same key would make one of them silently unused.
TABLE_KEYS: dict[str, tuple[str, ...]] = {
    "taxonomy_classes.csv": ("prefix",),
    "chronic_conditions.csv": ("prefix",),
    "timed_codes.csv": ("cpt",),
    "education_group_codes.csv": ("cpt",),
    "ncci_ptp_therapy.csv": ("column1", "column2", "effective_from"),
    "expected_payment.csv": ("payer_type", "cpt"),
}


@dataclass(frozen=True)
class CodeSet:
    name: str
    values: tuple[str, ...]
    description: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class IcdTable:
    """One ICD-10-CM release: every valid code (undotted), the billable (leaf) ones, and the
    service dates it applies to (a fiscal year runs October 1 to September 30)."""

    name: str
    valid: frozenset[str]
    billable: frozenset[str]
    content_hash: str
    effective_from: date = date.min
    effective_to: date = date.max


@dataclass(frozen=True)
class MueTable:
    """One quarterly CMS practitioner MUE file: per code, its MUE value (the most units of service
    for one beneficiary on one date of service) and MUE adjudication indicator (1 per claim line,
    2 or 3 per date of service). In force from its effective date until the next loaded file's."""

    name: str
    effective_from: date
    values: dict[str, tuple[int, int]]  # code -> (MUE value, MAI)
    content_hash: str


def fiscal_year_dates(fiscal_year: int) -> tuple[date, date]:
    """CMS code sets change every October 1: FY2027 covers 2026-10-01 to 2027-09-30."""
    return date(fiscal_year - 1, 10, 1), date(fiscal_year, 9, 30)


@dataclass
class ReferenceData:
    code_sets: dict[str, CodeSet] = field(default_factory=dict)
    payer_defaults: dict[str, Any] = field(default_factory=dict)
    payer_types: dict[str, dict[str, Any]] = field(default_factory=dict)
    payers: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)  # relative path -> sha256 of content
    icd_releases: dict[int, IcdTable] = field(default_factory=dict)  # by fiscal year; later folders replace
    mue_releases: dict[date, MueTable] = field(default_factory=dict)  # by effective date; later folders replace
    # Where each payer setting's value was written: (section, setting) -> (path, line, col).
    setting_marks: dict[tuple[str, str], tuple[str, int, int]] = field(default_factory=dict)

    def icd_for(self, service_date: date) -> IcdTable | None:
        """The ICD-10-CM release in force on a service date, if one is loaded."""
        return next((r for r in self.icd_releases.values() if r.effective_from <= service_date <= r.effective_to), None)

    def settings_for(self, payer_type: str | None, payer_id: str | None) -> dict[str, Any]:
        """The effective settings of one payer: defaults < payer type < payer profile."""
        out = dict(self.payer_defaults)
        profile = self.payers.get(payer_id or "", {})
        ptype = profile.get("payer_type", payer_type)
        out.update(self.payer_types.get(ptype or "", {}))
        out.update({k: v for k, v in profile.items() if k != "payer_type"})
        return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_reference(dirs: list[Path], problems: list[ConfigProblem]) -> ReferenceData:
    """Load and merge the reference data of each rules folder, in order."""
    ref = ReferenceData()
    bundled = load_icd10cm()
    ref.icd_releases[bundled.effective_to.year] = bundled
    ref.hashes["icd10cm:" + bundled.name] = bundled.content_hash
    for directory in dirs:
        _load_code_sets(directory, ref, problems)
        _load_payers(directory, ref, problems)
        _load_tables(directory, ref, problems)
        _load_icd_releases(directory, ref, problems)
        _load_mue_releases(directory, ref, problems)
    _check_setting_names(ref, problems)
    return ref


def with_payer_settings_of(ref: ReferenceData, directory: Path) -> ReferenceData:
    """`ref` with the payer settings of one folder only (its payers.yaml, already checked when the
    pack loaded): the settings the bundled rules' examples and the baseline line are written for."""
    own = ReferenceData()
    _load_payers(directory, own, [])
    return replace(ref, payer_defaults=own.payer_defaults, payer_types=own.payer_types, payers=own.payers)


# List settings whose values must be names from a table column: (setting, table, column).
_NAMED_BY_TABLE = (
    ("qualified_education_providers", "taxonomy_classes.csv", "provider_class"),
    ("chronic_conditions", "chronic_conditions.csv", "category"),
)


def _check_setting_names(ref: ReferenceData, problems: list[ConfigProblem]) -> None:
    """A provider class or condition category in payers.yaml must exist in its table (a typo would
    silently never match)."""
    from scrubber.loader import did_you_mean

    layers = [("defaults", ref.payer_defaults), *((f"payer type {k}", v) for k, v in ref.payer_types.items()),
              *((f"payer {k}", v) for k, v in ref.payers.items())]
    for setting, table, column in _NAMED_BY_TABLE:
        known = {row[column] for row in ref.tables.get(table, [])}
        for where, settings in layers:
            for name in settings.get(setting) or ():
                if known and name not in known:
                    at = ref.setting_marks.get((where, setting), ("payers.yaml", 1, 1))
                    problems.append(ConfigProblem(*at, f"{where}: {setting} names '{name}'"
                                                  f"{did_you_mean(name, known)}, which is not a {column} in tables/{table}"))


_ORDER_FILE = re.compile(r"icd10cm[-_]order[-_](\d{4})\.txt")
_CODES_FILE = re.compile(r"icd10cm[-_]codes[-_](\d{4})\.txt")


def _load_icd_releases(directory: Path, ref: ReferenceData, problems: list[ConfigProblem]) -> None:
    """CMS ICD-10-CM files in tables/icd10cm/, named by fiscal year as CMS names them.

    `icd10cm_order_2027.txt` (the order file: every code, a 0/1 billable flag at column 15) or
    `icd10cm_codes_2027.txt` (billable codes only; their 3+ character prefixes count as valid
    header codes).
    """
    folder = directory / "tables" / "icd10cm"
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        order, codes_only = _ORDER_FILE.fullmatch(path.name), _CODES_FILE.fullmatch(path.name)
        if not (order or codes_only):
            problems.append(ConfigProblem(str(path), 1, 1, "unknown ICD-10-CM file name; expected the CMS "
                                          "icd10cm_order_YYYY.txt or icd10cm_codes_YYYY.txt (YYYY = fiscal year)"))
            continue
        raw = path.read_bytes()
        valid: set[str] = set()
        billable: set[str] = set()
        for number, line in enumerate(raw.decode("latin-1").splitlines(), start=1):
            if not line.strip():
                continue
            if order:
                code, flag = line[6:13].strip(), line[14:15]
                if len(line) < 15 or flag not in ("0", "1") or not _ICD_SHAPE.fullmatch(code):
                    problems.append(ConfigProblem(str(path), number, 1, "not an order-file line; expected the "
                                                  "order number, the code at columns 7-13 and 0/1 at column 15"))
                    return
                valid.add(code)
                if flag == "1":
                    billable.add(code)
            else:
                code = line.split()[0]
                if not _ICD_SHAPE.fullmatch(code):
                    problems.append(ConfigProblem(str(path), number, 1, f"{code!r} is not an ICD-10-CM code; expected "
                                                  "one billable code (without its dot) and its description per line"))
                    return
                billable.add(code)
                valid.update(code[:k] for k in range(3, len(code) + 1))
        year = int((order or codes_only).group(1))  # type: ignore[union-attr]
        start, end = fiscal_year_dates(year)
        ref.icd_releases[year] = IcdTable(path.name, frozenset(valid), frozenset(billable), _sha(raw), start, end)
        ref.hashes[_rel(directory, path)] = _sha(raw)


_ICD_SHAPE = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")

# CMS names the files MCR_MUE_PractitionerServices_Eff_10-01-2026.csv; an ISO date is accepted too.
_MUE_FILE = re.compile(r"MCR_MUE_PractitionerServices_Eff_(?:(\d{2})-(\d{2})-(\d{4})|(\d{4})-(\d{2})-(\d{2}))\.csv",
                       re.IGNORECASE)
_MUE_HEADER = "hcpcs/cpt code"


def _load_mue_releases(directory: Path, ref: ReferenceData, problems: list[ConfigProblem]) -> None:
    """CMS practitioner MUE files in tables/mue/, named as CMS names them (the effective date).

    The file opens with CMS's copyright text; the table starts at the row whose first cell is
    `HCPCS/CPT Code`, with the columns code, Practitioner Services MUE Values, MUE Adjudication
    Indicator (`1 Line Edit`, `2 Date of Service Edit: Policy`, `3 Date of Service Edit: Clinical`)
    and MUE Rationale.
    """
    folder = directory / "tables" / "mue"
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        named = _MUE_FILE.fullmatch(path.name)
        if not named:
            problems.append(ConfigProblem(str(path), 1, 1, "unknown MUE file name; expected the CMS "
                                          "MCR_MUE_PractitionerServices_Eff_MM-DD-YYYY.csv"))
            continue
        month, day, year = named.group(1, 2, 3) if named.group(1) else named.group(5, 6, 4)
        try:
            effective = date(int(year), int(month), int(day))
        except ValueError:
            problems.append(ConfigProblem(str(path), 1, 1, "the file name's effective date is not a date"))
            continue
        raw = path.read_bytes()
        values = _mue_values(str(path), raw, problems)
        if values is not None:
            ref.mue_releases[effective] = MueTable(path.name, effective, values, _sha(raw))
            ref.hashes[_rel(directory, path)] = _sha(raw)


def _mue_values(path: str, raw: bytes, problems: list[ConfigProblem]) -> dict[str, tuple[int, int]] | None:
    """The code -> (MUE value, MAI) rows of one MUE file, or None (with a problem) if it is not one."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")  # CMS text may hold a registered-trademark sign
    values: dict[str, tuple[int, int]] = {}
    in_table = False
    for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in cells]
        if not in_table:
            in_table = bool(cells) and cells[0].lower() == _MUE_HEADER
            continue
        if not any(cells):
            continue
        if len(cells) < 3:
            problems.append(ConfigProblem(path, number, 1, f"row has {len(cells)} cells; expected the code, "
                                          "the MUE value and the MUE adjudication indicator"))
            return None
        code, value, indicator = cells[0].upper(), cells[1], cells[2][:1]
        if not (len(code) == 5 and code.isalnum()):
            problems.append(ConfigProblem(path, number, 1, f"{code!r} is not a 5-character CPT/HCPCS code"))
            return None
        if not value.isdigit():
            problems.append(ConfigProblem(path, number, 2, f"MUE value {value!r} is not a whole number of units"))
            return None
        if indicator not in ("1", "2", "3"):
            problems.append(ConfigProblem(path, number, 3, f"MUE adjudication indicator {cells[2]!r} does not start "
                                          "with 1, 2 or 3"))
            return None
        values[code] = (int(value), int(indicator))
    if not in_table:
        problems.append(ConfigProblem(path, 1, 1, "no 'HCPCS/CPT Code' header row; expected the CMS practitioner "
                                      "MUE table (HCPCS/CPT Code, Practitioner Services MUE Values, MUE Adjudication "
                                      "Indicator, MUE Rationale)"))
        return None
    return values


def _rel(directory: Path, path: Path) -> str:
    """A name for a data file that does not depend on where the folder is checked out."""
    return f"{directory.resolve().name}/{path.relative_to(directory).as_posix()}"


def _data_file(directory: Path, name: str, ref: ReferenceData, problems: list[ConfigProblem]) -> tuple[Path, Any]:
    """Parse one YAML data file of a rules folder, recording its hash; (path, None) if absent or broken."""
    path = directory / name
    if not path.exists():
        return path, None
    ref.hashes[_rel(directory, path)] = _sha(path.read_bytes())
    data, found = yamlfile.load(path)
    problems.extend(found)
    return path, data


def _load_code_sets(directory: Path, ref: ReferenceData, problems: list[ConfigProblem]) -> None:
    path, data = _data_file(directory, "code_sets.yaml", ref, problems)
    if data is None:
        return
    if not isinstance(data, dict):
        problems.append(ConfigProblem(str(path), 1, 1, "expected a mapping of set name to {values, description, sources}"))
        return
    for name, body in data.items():
        line, col = yamlfile.key_pos(data, name)
        if not isinstance(body, dict) or not isinstance(body.get("values"), list):
            problems.append(ConfigProblem(str(path), line, col, f"code set '{name}' needs a 'values' list"))
            continue
        unknown = set(body) - {"values", "description", "sources"}
        for key in sorted(unknown):
            kl, kc = yamlfile.key_pos(body, key)
            problems.append(ConfigProblem(str(path), kl, kc, f"unknown key '{key}' in code set '{name}'; expected values, description, sources"))
        values = body["values"]
        if not values:
            problems.append(ConfigProblem(str(path), line, col, f"code set '{name}' is empty; list at least one code"))
        for i, v in enumerate(values):
            if not isinstance(v, str):
                il, ic = yamlfile.item_pos(values, i)
                problems.append(ConfigProblem(str(path), il, ic, f"code {v!r} in set '{name}' is not text; quote it: \"{v}\""))
        if not body.get("sources"):
            problems.append(ConfigProblem(str(path), line, col, f"code set '{name}' has no sources; cite where its codes come from"))
        ref.code_sets[name] = CodeSet(
            name, tuple(str(v) for v in values), str(body.get("description", "")),
            tuple(str(s) for s in body.get("sources") or ()),
        )


def _check_settings(path: str, node: Any, where: str, problems: list[ConfigProblem], profile: bool,
                    marks: dict[tuple[str, str], tuple[str, int, int]]) -> dict[str, Any]:
    if not isinstance(node, dict):
        problems.append(ConfigProblem(path, *getattr(node, "mark", (1, 1)), f"{where}: expected a mapping of settings"))
        return {}
    out: dict[str, Any] = {}
    for key, value in node.items():
        line, col = yamlfile.key_pos(node, key)
        vline, vcol = yamlfile.value_pos(node, key)
        if key in ("payer_type", "rule_severity") and not profile:
            problems.append(ConfigProblem(path, line, col, f"'{key}' belongs in a payer profile (payers: PAYER_ID: ...), not in {where}"
                                          + ("; for a payer type use the rule's severity_by_payer_type" if key == "rule_severity" else "")))
            continue
        if key not in PAYER_SETTINGS:
            from scrubber.loader import did_you_mean

            problems.append(ConfigProblem(path, line, col, f"unknown setting '{key}' in {where}{did_you_mean(key, PAYER_SETTINGS)}; expected one of: {', '.join(k for k in PAYER_SETTINGS if profile or k != 'payer_type')}"))
            continue
        bad = None
        if key == "filing_limit":
            if not (isinstance(value, dict) and len(value) == 1 and set(value) <= {"days", "months"}
                    and isinstance(next(iter(value.values())), int) and next(iter(value.values())) > 0):
                bad = "expected {days: N} or {months: N} with N a positive whole number"
        elif key in _DAY_SETTINGS:
            if not isinstance(value, int) or isinstance(value, bool) or value < _DAY_SETTINGS[key]:
                bad = f"expected a whole number of days ({_DAY_SETTINGS[key]} or more)"
        elif key in _ENUM_SETTINGS:
            if value not in _ENUM_SETTINGS[key]:
                bad = f"expected one of: {', '.join(_ENUM_SETTINGS[key])}"
        elif key in _BOOL_SETTINGS:
            if not isinstance(value, bool):
                bad = "expected true or false"
        elif key in _LIST_SETTINGS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                bad = "expected a list of text values (quote codes)"
        elif key == "rule_severity":
            if not isinstance(value, dict) or not all(v in ("deny", "at-risk") for v in value.values()):
                bad = "expected {RULE_ID: deny|at-risk}"
        elif key == "payer_type" and value not in PAYER_TYPES:
            bad = f"expected one of: {', '.join(PAYER_TYPES)}"
        if bad:
            problems.append(ConfigProblem(path, vline, vcol, f"{where}: '{key}' is {value!r}; {bad}"))
            continue
        out[key] = value
        marks[(where, key)] = (path, vline, vcol)
    return out


def _load_payers(directory: Path, ref: ReferenceData, problems: list[ConfigProblem]) -> None:
    path, data = _data_file(directory, "payers.yaml", ref, problems)
    if data is None:
        return
    shown = str(path)
    if not isinstance(data, dict):
        problems.append(ConfigProblem(shown, 1, 1, "expected a mapping with defaults, payer_types, payers"))
        return
    for key in data:
        if key not in ("defaults", "payer_types", "payers"):
            line, col = yamlfile.key_pos(data, key)
            problems.append(ConfigProblem(shown, line, col, f"unknown section '{key}'; expected defaults, payer_types, payers"))
    ref.payer_defaults.update(_check_settings(shown, data.get("defaults") or {}, "defaults", problems, False, ref.setting_marks))
    for ptype, body in (data.get("payer_types") or {}).items():
        if ptype not in PAYER_TYPES:
            line, col = yamlfile.key_pos(data["payer_types"], ptype)
            problems.append(ConfigProblem(shown, line, col, f"unknown payer type '{ptype}'; expected one of: {', '.join(PAYER_TYPES)}"))
            continue
        merged = dict(ref.payer_types.get(ptype, {}))
        merged.update(_check_settings(shown, body or {}, f"payer type {ptype}", problems, False, ref.setting_marks))
        ref.payer_types[ptype] = merged
    spelled: dict[str, Any] = {}
    for payer_id, body in (data.get("payers") or {}).items():
        key = payer_key(payer_id)  # the reader upper-cases payer_id: a profile for Cigna is CIGNA's
        if key in spelled:
            line, col = yamlfile.key_pos(data["payers"], payer_id)
            problems.append(ConfigProblem(shown, line, col, f"payer {payer_id} is the same payer as {spelled[key]} "
                                          "(payer ids are matched whatever their case); keep one profile"))
            continue
        spelled[key] = payer_id
        merged = dict(ref.payers.get(key, {}))
        merged.update(_check_settings(shown, body or {}, f"payer {key}", problems, True, ref.setting_marks))
        ref.payers[key] = merged


def payer_key(payer_id: Any) -> str:
    """A payer_id as the reader holds it: trimmed, upper-cased."""
    return str(payer_id).strip().upper()


def _load_tables(directory: Path, ref: ReferenceData, problems: list[ConfigProblem]) -> None:
    folder = directory / "tables"
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix == ".csv" and path.name not in TABLES:
                problems.append(ConfigProblem(str(path), 1, 1, f"unknown table '{path.name}'; expected one of: {', '.join(TABLES)}"))
    for name, columns in TABLES.items():
        path = folder / name
        if not path.exists():
            continue
        raw = path.read_bytes()
        ref.hashes[_rel(directory, path)] = _sha(raw)
        try:
            reader = csv.reader(io.StringIO(raw.decode("utf-8-sig")))  # Excel's "CSV UTF-8" starts with a BOM
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error) as exc:
            problems.append(ConfigProblem(str(path), 1, 1, f"cannot read the table: {exc.__class__.__name__}; expected UTF-8 CSV"))
            continue
        header = tuple(rows[0]) if rows else ()
        if header != columns:
            problems.append(ConfigProblem(str(path), 1, 1, f"columns are {', '.join(header) or 'none'}; expected {', '.join(columns)}"))
            continue
        records = []
        keys: dict[tuple[str, ...], int] = {}  # key -> line
        for line, cells in enumerate(rows[1:], start=2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                problems.append(ConfigProblem(str(path), line, 1, f"row has {len(cells)} cells; expected {len(columns)} ({', '.join(columns)})"))
                continue
            record = dict(zip(columns, (c.strip() for c in cells), strict=True))
            for col_no, column in enumerate(columns, start=1):
                check = _CELL_CHECKS.get(column)
                if check and not check[1](record[column]):
                    problems.append(ConfigProblem(str(path), line, col_no, f"{column} {record[column]!r} is not valid; expected {check[0]}"))
            if not record.get("source", "x"):
                problems.append(ConfigProblem(str(path), line, len(columns), "row has no source; cite where the value comes from"))
            key = tuple(record[c] for c in TABLE_KEYS[name])
            if key in keys:
                problems.append(ConfigProblem(str(path), line, 1, f"repeats the {', '.join(TABLE_KEYS[name])} of line "
                                              f"{keys[key]} ({', '.join(key)}); each may appear once"))
            keys.setdefault(key, line)
            records.append(record)
        ref.tables[name] = records


_ICD_CACHE: IcdTable | None = None


_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")


def _code_list_date(name: str) -> tuple[int, int] | None:
    """(year, month) of a `code-list-April-2026.txt` release file, or None for other files."""
    parts = name.removesuffix(".txt").split("-")
    if len(parts) != 4 or parts[:2] != ["code", "list"] or parts[2].lower() not in _MONTHS or not parts[3].isdigit():
        return None
    return int(parts[3]), _MONTHS.index(parts[2].lower()) + 1


def load_icd10cm() -> IcdTable:
    """Read the ICD-10-CM code list shipped by the simple-icd-10-cm package (CMS data).

    The package's module parses a 10 MB XML file on import; only its plain code list is needed:
    valid codes, and billable codes = codes with no sub-code (a header such as E11 is valid but
    not billable).
    """
    global _ICD_CACHE
    if _ICD_CACHE is None:
        # find_spec locates the package without importing it (its import parses the XML).
        spec = importlib.util.find_spec("simple_icd_10_cm")
        if spec is None or not spec.submodule_search_locations:
            raise ScrubberError("the simple-icd-10-cm package is not installed; pip install scrubber again")
        data_dir = Path(next(iter(spec.submodule_search_locations))) / "data"
        lists = [p.name for p in data_dir.iterdir() if _code_list_date(p.name)]
        if not lists:
            raise ScrubberError(f"no ICD-10-CM code list in {data_dir}")
        name = max(lists, key=_code_list_date)  # the newest release (by its month, not its spelling)
        raw = (data_dir / name).read_bytes()
        # Chapter and block ranges (A00-A09) are not codes; the rest are, without their dots.
        codes = sorted({c for c in (line.strip() for line in raw.decode("utf-8").splitlines())
                        if len(c) >= 3 and c[0].isalpha() and "-" not in c})
        # Sorted, a header code (E11) is directly followed by one that extends it (E110): not billable.
        billable = [c for c, following in zip(codes, [*codes[1:], ""], strict=True) if not following.startswith(c)]
        year, month = _code_list_date(name) or (0, 0)
        # The April release updates the fiscal year that began the October before it.
        start, end = fiscal_year_dates(year + 1 if month >= 10 else year)
        _ICD_CACHE = IcdTable(
            name=name.removesuffix(".txt"),
            valid=frozenset(codes),
            billable=frozenset(billable),
            content_hash=_sha(raw),
            effective_from=start,
            effective_to=end,
        )
    return _ICD_CACHE

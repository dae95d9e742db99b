"""Load rule files: strict keys, typed values, every problem collected with path:line:col.

A rules folder holds one YAML file per rule (in any sub-folder), plus data: `code_sets.yaml`,
`payers.yaml`, `baseline_line.yaml` and `tables/`. Folders given later override earlier ones:
a rule with the same id replaces the earlier rule, and `{id: X, disabled: true}` removes it.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from scrubber import compile as compiler
from scrubber import engine, regex, yamlfile
from scrubber.claims import DIAGNOSIS_FIELDS, UPPER_CASE_FIELDS, normalise_diagnosis
from scrubber.derive import DERIVED
from scrubber.errors import ConfigProblem, InputError, RuleConfigError
from scrubber.fields import CAUSES, COLUMNS_BY_NAME, PAYER_TYPES, PHI_COLUMNS, SEVERITIES, FieldType
from scrubber.model import (
    COMPARISONS,
    ORDERINGS,
    PRESENCE,
    VALUE_LISTS,
    All,
    AnyOf,
    Condition,
    Example,
    Leaf,
    Not,
    Op,
    Rule,
    Source,
    Where,
)
from scrubber.reference import ReferenceData, load_reference

BUNDLED_RULES = Path(__file__).resolve().parent.parent / "rules"
DATA_FILES = {"code_sets.yaml", "payers.yaml", "baseline_line.yaml"}

RULE_KEYS = {
    "id": "UPPER_SNAKE id, equal to the file name",
    "name": "kebab-case name of the problem",
    "status": "stable, preview or deprecated",
    "summary": "one sentence: what the rule checks",
    "cause": "one of the contract's causes",
    "severity": "deny or at-risk",
    "severity_by_payer_type": "{payer_type: deny|at-risk}",
    "carc": "expected claim adjustment reason code, e.g. '16'",
    "group_code": "CO, OA, PR, PI or CR",
    "rarc": "remark code, e.g. N362",
    "when": "the condition",
    "message": "what is wrong, with {field} placeholders",
    "fix": "how to fix it, with {field} placeholders",
    "rationale": "why payers deny it",
    "sources": "list of {title, url}",
    "unverified": "claims in this rule no source backs",
    "examples": "{fires: [...], passes: [...], todo: [...]}",
    "effective_from": "first service date the rule applies to (YYYY-MM-DD)",
    "effective_to": "last service date the rule applies to (YYYY-MM-DD)",
    "disabled": "true to remove a rule of the same id from an earlier rules folder",
}
# Stand-ins for missing required keys, so the rest of a broken file is still checked.
_PLACEHOLDERS: dict[str, Any] = {
    "name": "missing-name", "summary": "missing", "cause": CAUSES[0], "severity": SEVERITIES[0], "carc": "16",
    "when": {"field": "cpt", "op": "exists"}, "message": "missing", "fix": "missing",
    "sources": ["missing"], "examples": {"fires": [{"title": "t", "line": {}}], "passes": [{"title": "t", "line": {}}]},
}
REQUIRED_KEYS = ("id", "name", "summary", "cause", "severity", "carc", "when", "message", "fix", "sources", "examples")
LEAF_KEYS = {"field", "op", "value", "set", "ref"}
EXAMPLE_KEYS = {"title", "line", "batch", "fires_on", "message", "severity", "expect", "mue_table"}
GROUP_CODES = ("CO", "OA", "PR", "PI", "CR")
STATUSES = ("stable", "preview", "deprecated")

OPS_BY_TYPE: dict[FieldType, tuple[Op, ...]] = {
    FieldType.TEXT: (Op.EQ, Op.NE, Op.IN, Op.NOT_IN, Op.MATCHES, *PRESENCE),
    FieldType.INT: (*COMPARISONS, Op.IN, Op.NOT_IN, *PRESENCE),
    FieldType.NUMBER: (*COMPARISONS, Op.IN, Op.NOT_IN, *PRESENCE),
    FieldType.DATE: (*COMPARISONS, *PRESENCE),
    FieldType.BOOL: (Op.EQ, Op.NE, *PRESENCE),
    FieldType.LIST: (Op.HAS_ANY, Op.HAS_NONE, *PRESENCE),
}
_ID = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@functools.cache
def field_types() -> dict[str, FieldType]:
    """Every field a rule may read: non-PHI input columns and derived fields (do not mutate)."""
    types = {name: col.type for name, col in COLUMNS_BY_NAME.items() if name not in PHI_COLUMNS}
    types.update({name: spec.type for name, spec in DERIVED.items()})
    return types


@dataclass
class RulePack:
    """The rules and reference data of one run, after layering and selection."""

    rules: list[Rule]
    reference: ReferenceData
    baseline: dict[str, Any]
    dirs: list[Path]
    compiled: dict[str, compiler.CompiledRule] = field(default_factory=dict)

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}


class _FileChecker:
    """Checks one rule file, collecting problems located in it."""

    def __init__(self, path: Path, shown: str, reference: ReferenceData, types: dict[str, FieldType]):
        self.path, self.shown, self.reference, self.types = path, shown, reference, types
        self.problems: list[ConfigProblem] = []

    def error(self, pos: tuple[int, int], message: str) -> None:
        self.problems.append(ConfigProblem(self.shown, pos[0], pos[1], message))

    # -- conditions ----------------------------------------------------------------------------
    def condition(self, node: Any, pos: tuple[int, int]) -> Condition | None:
        if not isinstance(node, dict):
            self.error(pos, "a condition must be a mapping; expected all:, any:, not: or {field, op, value}")
            return None
        groups = [k for k in ("all", "any", "not") if k in node]
        if groups:
            if len(node) != 1:
                extra = next(k for k in node if k != groups[0])
                self.error(yamlfile.key_pos(node, extra), f"unexpected key '{extra}' beside '{groups[0]}'; a group has only its one key")
                return None
            key = groups[0]
            child_pos = yamlfile.value_pos(node, key)
            if key == "not":
                inner = self.condition(node["not"], child_pos)
                return Not(inner) if inner else None
            items = node[key]
            if not isinstance(items, list) or not items:
                self.error(child_pos, f"'{key}' needs a non-empty list of conditions")
                return None
            children = [self.condition(c, yamlfile.item_pos(items, i)) for i, c in enumerate(items)]
            if any(c is None for c in children):
                return None
            kids = tuple(c for c in children if c is not None)
            return All(kids) if key == "all" else AnyOf(kids)
        return self.leaf(node, pos)

    def leaf(self, node: dict[str, Any], pos: tuple[int, int]) -> Leaf | None:
        ok = True
        for key in node:
            if key not in LEAF_KEYS:
                self.error(yamlfile.key_pos(node, key), f"unknown key '{key}' in a condition{did_you_mean(key, LEAF_KEYS | {'all', 'any', 'not'})}; expected field, op and value, set or ref")
                ok = False
        name = node.get("field")
        if not isinstance(name, str):
            self.error(pos, "a condition needs 'field'; expected {field: NAME, op: OP, value: V}")
            return None
        fpos = yamlfile.value_pos(node, "field")
        if name in PHI_COLUMNS:
            self.error(fpos, f"'{name}' is patient-identifying and cannot be read by rules; use a derived field")
            return None
        if name not in self.types:
            self.error(fpos, f"unknown field '{name}'{did_you_mean(name, self.types)}; expected a contract column or a derived field (scrubber rules fields)")
            return None
        ftype = self.types[name]
        op_text = node.get("op")
        opos = yamlfile.value_pos(node, "op") if "op" in node else pos
        try:
            op = Op(op_text)
        except ValueError:
            self.error(opos, f"unknown op '{op_text}'{did_you_mean(str(op_text), [o.value for o in Op])}; expected one of: {', '.join(o.value for o in Op)}")
            return None
        if op not in OPS_BY_TYPE[ftype]:
            self.error(opos, f"op '{op}' does not apply to {ftype} field '{name}'; expected one of: {', '.join(OPS_BY_TYPE[ftype])}")
            return None
        given = [k for k in ("value", "set", "ref") if k in node]
        where = Where(self.shown, *pos)
        if op in PRESENCE:
            if given:
                self.error(yamlfile.key_pos(node, given[0]), f"op '{op}' takes no {given[0]}")
                return None
            return Leaf(name, op, where=where) if ok else None
        if len(given) != 1:
            expected = "value or set" if op in VALUE_LISTS else "value or ref" if op in COMPARISONS else "value"
            self.error(opos, f"op '{op}' needs exactly one of: {expected}")
            return None
        kind = given[0]
        vpos = yamlfile.value_pos(node, kind)
        if kind == "ref":
            return self._ref_leaf(node["ref"], name, ftype, op, vpos, where) if ok else None
        if kind == "set":
            if op not in VALUE_LISTS:
                self.error(vpos, f"'set' goes with in, not_in, has_any or has_none, not '{op}'")
                return None
            code_set = self.reference.code_sets.get(node["set"])
            if code_set is None:
                self.error(vpos, f"unknown code set '{node['set']}'{did_you_mean(str(node['set']), self.reference.code_sets)}; expected a name from code_sets.yaml")
                return None
            values: Any = tuple(self._normalise(v, ftype, name) for v in code_set.values)
            return Leaf(name, op, values, where=where) if ok and self._check_values(values, ftype, name, vpos) else None
        value = node["value"]
        if op in VALUE_LISTS:
            if not isinstance(value, list):
                self.error(vpos, f"op '{op}' needs a list of values")
                return None
            if not value:
                self.error(vpos, f"the '{op}' list is empty; it would never match")
                return None
            items = value
            valid = all(self._check_value(v, ftype, name, yamlfile.item_pos(items, i)) for i, v in enumerate(items))
            if not valid:
                return None
            return Leaf(name, op, tuple(self._normalise(v, ftype, name) for v in items), where=where) if ok else None
        if op is Op.MATCHES:
            if not isinstance(value, str):
                self.error(vpos, "'matches' needs a pattern in quotes")
                return None
            try:
                regex.translate(value)  # the documented pattern subset (see regex.py)
            except regex.RegexError as exc:
                self.error(vpos, f"the pattern {value!r} cannot run in the rules engine: {exc}")
                return None
            if name in UPPER_CASE_FIELDS and re.search(r"[a-z]", re.sub(r"\\.", "", value)):
                self.error(vpos, f"the pattern {value!r} has lower-case letters, but {name} is read upper-cased "
                                 f"(rules/README.md §2.2), so they never match; write them in upper case")
                return None
            return Leaf(name, op, value, where=where) if ok else None
        if not self._check_value(value, ftype, name, vpos):
            return None
        return Leaf(name, op, self._normalise(value, ftype, name), where=where) if ok else None

    def _ref_leaf(self, ref: Any, name: str, ftype: FieldType, op: Op, vpos: tuple[int, int], where: Where) -> Leaf | None:
        if op not in COMPARISONS:
            self.error(vpos, f"'ref' compares two fields and goes with eq, ne, lt, le, gt, ge, not '{op}'")
            return None
        if not isinstance(ref, str) or ref not in self.types:
            self.error(vpos, f"unknown field '{ref}'{did_you_mean(str(ref), self.types)} in ref; expected a contract column or a derived field")
            return None
        numeric = {FieldType.INT, FieldType.NUMBER}
        rtype = self.types[ref]
        if not (rtype == ftype or (rtype in numeric and ftype in numeric)):
            self.error(vpos, f"cannot compare {ftype} field '{name}' with {rtype} field '{ref}'; expected fields of the same type")
            return None
        if op in ORDERINGS and ftype is FieldType.TEXT:
            self.error(vpos, "text fields cannot be ordered (lt, le, gt, ge); expected eq or ne")
            return None
        return Leaf(name, op, ref=ref, where=where)

    def _check_values(self, values: tuple[Any, ...], ftype: FieldType, name: str, pos: tuple[int, int]) -> bool:
        return all(self._check_value(v, ftype, name, pos) for v in values)

    def _check_value(self, value: Any, ftype: FieldType, name: str, pos: tuple[int, int]) -> bool:
        if ftype in (FieldType.TEXT, FieldType.LIST):
            if not isinstance(value, str):
                self.error(pos, f"{value!r} is not text but '{name}' is a text field; quote it: \"{value}\"")
                return False
            if len(value.encode("utf-8")) > 1000:
                self.error(pos, f"a value for '{name}' is over 1000 bytes; expected a code")
                return False
        elif ftype is FieldType.INT:
            if isinstance(value, bool) or not isinstance(value, int):
                self.error(pos, f"{value!r} is not a whole number but '{name}' is an int field")
                return False
        elif ftype is FieldType.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value or value in (float("inf"), float("-inf")):
                self.error(pos, f"{value!r} is not a finite number but '{name}' is a number field")
                return False
        elif ftype is FieldType.DATE:
            if not isinstance(value, date):
                try:
                    date.fromisoformat(str(value))
                except ValueError:
                    self.error(pos, f"{value!r} is not a date but '{name}' is a date field; expected YYYY-MM-DD")
                    return False
        elif ftype is FieldType.BOOL and not isinstance(value, bool):
            self.error(pos, f"{value!r} is not true or false but '{name}' is a true/false field")
            return False
        return True

    @staticmethod
    def _normalise(value: Any, ftype: FieldType, name: str = "") -> Any:
        if ftype is FieldType.DATE and not isinstance(value, date):
            return date.fromisoformat(str(value))
        if name in DIAGNOSIS_FIELDS and isinstance(value, str):
            return normalise_diagnosis(value)  # "E11.9" in a rule means E119, as read from exports
        if name in UPPER_CASE_FIELDS and isinstance(value, str):
            return value.upper()  # the reader upper-cases these codes, so a rule's "gp" means GP
        if ftype is FieldType.NUMBER and isinstance(value, float) and value.is_integer():
            return value
        return value

    # -- templates and examples ----------------------------------------------------------------
    def template(self, text: Any, key: str, pos: tuple[int, int]) -> str | None:
        if not isinstance(text, str) or not text.strip():
            self.error(pos, f"'{key}' must be non-empty text")
            return None
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as exc:
            self.error(pos, f"'{key}' is not a valid template: {exc}; write {{field}} placeholders and {{{{ }}}} for braces")
            return None
        for placeholder in names:
            if placeholder in PHI_COLUMNS:
                self.error(pos, f"'{key}' shows '{placeholder}', which identifies the patient; messages never show PHI")
                return None
            known = placeholder in self.types or placeholder in ("claim_id", "line_no")
            if not known:
                self.error(pos, f"unknown placeholder {{{placeholder}}} in '{key}'{did_you_mean(placeholder, self.types)}; expected a field name")
                return None
        return text

    def examples(self, node: Any, pos: tuple[int, int]) -> tuple[Example, ...]:
        if not isinstance(node, dict):
            self.error(pos, "'examples' must be a mapping with fires, passes and optional todo lists")
            return ()
        out: list[Example] = []
        for key in node:
            if key not in ("fires", "passes", "todo"):
                self.error(yamlfile.key_pos(node, key), f"unknown key '{key}' in examples{did_you_mean(key, ['fires', 'passes', 'todo'])}; expected fires, passes, todo")
        for kind in ("fires", "passes", "todo"):
            items = node.get(kind) or []
            if not isinstance(items, list):
                self.error(yamlfile.value_pos(node, kind), f"'{kind}' must be a list of examples")
                continue
            for i, item in enumerate(items):
                example = self.example(item, kind, yamlfile.item_pos(items, i))
                if example:
                    out.append(example)
        if not any(e.expect == "fires" and not e.todo for e in out):
            self.error(pos, "no 'fires' example; add at least one line the rule must fire on")
        if not any(e.expect == "passes" and not e.todo for e in out):
            self.error(pos, "no 'passes' example; add at least one line the rule must pass")
        return tuple(out)

    def example(self, item: Any, kind: str, pos: tuple[int, int]) -> Example | None:
        if not isinstance(item, dict):
            self.error(pos, "an example must be a mapping with title and line (or batch)")
            return None
        for key in item:
            if key not in EXAMPLE_KEYS:
                self.error(yamlfile.key_pos(item, key), f"unknown key '{key}' in an example{did_you_mean(key, EXAMPLE_KEYS)}; expected one of: {', '.join(sorted(EXAMPLE_KEYS))}")
                return None
        title = item.get("title")
        if not isinstance(title, str) or not title.strip():
            self.error(pos, "an example needs a 'title'")
            return None
        expect = kind
        if kind == "todo":
            expect = item.get("expect")
            if expect not in ("fires", "passes"):
                self.error(yamlfile.value_pos(item, "expect") if "expect" in item else pos, "a todo example needs 'expect: fires' or 'expect: passes'")
                return None
        elif "expect" in item:
            self.error(yamlfile.key_pos(item, "expect"), "'expect' belongs to todo examples only")
            return None
        if ("line" in item) == ("batch" in item):
            self.error(pos, f"example '{title}' needs exactly one of 'line' or 'batch'")
            return None
        lines = [item["line"]] if "line" in item else item["batch"]
        if not isinstance(lines, list) or not lines or not all(isinstance(x, dict) for x in lines):
            self.error(pos, f"example '{title}': 'batch' must be a list of lines")
            return None
        for line in lines:
            for column in line:
                if column not in COLUMNS_BY_NAME:
                    self.error(yamlfile.key_pos(line, column), f"unknown column '{column}' in example '{title}'{did_you_mean(column, COLUMNS_BY_NAME)}; expected a contract column")
                    return None
        if "line" in item:
            fires_on: tuple[int, ...] = (0,) if expect == "fires" else ()
            if "fires_on" in item:
                self.error(yamlfile.key_pos(item, "fires_on"), "'fires_on' goes with 'batch'")
                return None
        else:
            raw = item.get("fires_on", [])
            if not isinstance(raw, list) or not all(isinstance(i, int) and 0 <= i < len(lines) for i in raw):
                self.error(yamlfile.value_pos(item, "fires_on") if "fires_on" in item else pos, f"'fires_on' must list line positions 0..{len(lines) - 1}")
                return None
            fires_on = tuple(raw)
            if expect == "fires" and not fires_on:
                self.error(pos, f"batch example '{title}' expects the rule to fire but 'fires_on' is empty")
                return None
            if expect == "passes" and fires_on:
                self.error(pos, f"batch example '{title}' is a 'passes' example; drop 'fires_on'")
                return None
        message = item.get("message")
        if message is not None and not isinstance(message, str):
            self.error(yamlfile.value_pos(item, "message"), "an example's 'message' must be text")
            return None
        severity = item.get("severity")
        if severity is not None and (severity not in SEVERITIES or expect != "fires"):
            self.error(yamlfile.value_pos(item, "severity"),
                       f"an example's 'severity' is one of {', '.join(SEVERITIES)}, on an example where the rule fires")
            return None
        mue_table = self.example_mue_table(item, title)
        if mue_table is None:
            return None
        return Example(title.strip(), expect, tuple(dict(x) for x in lines), fires_on, message,
                       kind == "todo", Where(self.shown, *pos), severity, mue_table)

    def example_mue_table(self, item: dict, title: str) -> tuple[tuple[str, int, int], ...] | None:
        """An example's own MUE rows ({cpt, mue, mai}): the CMS file is not bundled (its values
        change every quarter), so an example that needs MUE values states them."""
        rows = item.get("mue_table", [])
        shape = "'mue_table' must be a list of {cpt: CODE, mue: UNITS, mai: 1|2|3}"
        if not isinstance(rows, list):
            self.error(yamlfile.value_pos(item, "mue_table"), f"example '{title}': {shape}")
            return None
        out = []
        for i, row in enumerate(rows):
            ok = (isinstance(row, dict) and set(row) == {"cpt", "mue", "mai"} and isinstance(row["cpt"], str)
                  and isinstance(row["mue"], int) and row["mue"] >= 0 and row["mai"] in (1, 2, 3))
            if not ok:
                self.error(yamlfile.item_pos(rows, i), f"example '{title}': {shape}")
                return None
            out.append((row["cpt"], row["mue"], row["mai"]))
        return tuple(out)

    # -- the rule ------------------------------------------------------------------------------
    def rule(self, data: Any) -> Rule | str | None:
        """Return the Rule, None on problems, or the id of a `disabled: true` stub."""
        if not isinstance(data, dict):
            self.error((1, 1), "a rule file must be a mapping of keys such as id, name, when")
            return None
        for key in data:
            if key not in RULE_KEYS:
                self.error(yamlfile.key_pos(data, key), f"unknown key '{key}'{did_you_mean(key, RULE_KEYS)}; expected one of: {', '.join(RULE_KEYS)}")
        rule_id = data.get("id")
        if data.get("disabled") is True:
            if not isinstance(rule_id, str):
                self.error((1, 1), "a disabled rule needs the 'id' it disables")
                return None
            return rule_id
        missing = [key for key in REQUIRED_KEYS if key not in data]
        for key in missing:
            self.error(data.mark, f"missing required key '{key}' ({RULE_KEYS[key]})")
        if missing:
            # Check what is there too, so one run reports every problem of the file.
            data = yamlfile.MarkedDict({**_PLACEHOLDERS, **data}, like=data)
        pos = lambda k: yamlfile.value_pos(data, k)  # noqa: E731
        if not isinstance(rule_id, str) or not _ID.fullmatch(rule_id):
            self.error(pos("id"), f"id {rule_id!r} is not UPPER_SNAKE_CASE with an area prefix, e.g. EDU_ORDER_MISSING")
        elif rule_id != self.path.stem:
            self.error(pos("id"), f"id '{rule_id}' differs from the file name '{self.path.name}'; expected {rule_id}.yaml")
        name = data["name"]
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            self.error(pos("name"), f"name {name!r} is not kebab-case naming the problem, e.g. order-missing")
        for key, allowed in (("cause", CAUSES), ("severity", SEVERITIES), ("status", STATUSES), ("group_code", GROUP_CODES)):
            if key in data and data[key] not in allowed:
                self.error(pos(key), f"{key} '{data[key]}' is not valid{did_you_mean(str(data[key]), allowed)}; expected one of: {', '.join(allowed)}")
        carc = data["carc"]
        if isinstance(carc, bool) or not isinstance(carc, int | str) or not re.fullmatch(r"[A-Z]?\d{1,3}", str(carc)):
            self.error(pos("carc"), f"carc {carc!r} is not a claim adjustment reason code; expected digits such as '16'")
        by_payer = data.get("severity_by_payer_type") or {}
        if not isinstance(by_payer, dict) or any(k not in PAYER_TYPES or v not in SEVERITIES for k, v in by_payer.items()):
            self.error(pos("severity_by_payer_type") if "severity_by_payer_type" in data else (1, 1),
                       f"severity_by_payer_type must map payer types ({', '.join(PAYER_TYPES)}) to deny or at-risk")
            by_payer = {}
        sources = self.sources(data["sources"], pos("sources"))
        unverified = data.get("unverified") or []
        if not isinstance(unverified, list) or not all(isinstance(u, str) for u in unverified):
            self.error(pos("unverified"), "'unverified' must be a list of text")
            unverified = []
        dates = {}
        for key in ("effective_from", "effective_to"):
            value = data.get(key)
            if value is not None and not isinstance(value, date):
                try:
                    value = date.fromisoformat(str(value))
                except ValueError:
                    self.error(pos(key), f"{key} {value!r} is not a date; expected YYYY-MM-DD")
                    value = None
            dates[key] = value
        when = self.condition(data["when"], pos("when"))
        message = self.template(data["message"], "message", pos("message"))
        fix = self.template(data["fix"], "fix", pos("fix"))
        summary = data["summary"]
        if not isinstance(summary, str) or not summary.strip():
            self.error(pos("summary"), "'summary' must be one sentence of text")
        examples = self.examples(data["examples"], pos("examples"))
        if self.problems or missing or when is None or message is None or fix is None:
            return None
        try:
            compiled = compiler.compile_condition(rule_id, when, self.types, engine.CHUNK_SIZE)
        except regex.RegexError as exc:  # already reported per leaf; kept as a guard
            self.error(pos("when"), str(exc))
            return None
        # Load it in the engine now (the run reuses the handle): a condition past the engine's
        # limits is an error here, with its location, not a failure in the middle of a run.
        complaint = engine.check_ruleset(compiled)
        if complaint:
            self.error(pos("when"), f"the condition is too large for the rules engine ({complaint}); "
                       "split it into several rules or compute part of it as a derived field")
            return None
        return Rule(
            id=rule_id, name=name, cause=data["cause"], severity=data["severity"], carc=str(carc),
            group_code=data.get("group_code", "CO"), summary=summary.strip(), when=when,
            message=message, fix=fix, sources=sources, examples=examples, path=self.shown,
            rarc=data.get("rarc"), status=data.get("status", "stable"),
            rationale=str(data.get("rationale") or "").strip(), unverified=tuple(unverified),
            severity_by_payer_type=dict(by_payer), effective_from=dates["effective_from"],
            effective_to=dates["effective_to"],
            content_hash=hashlib.sha256(self.path.read_bytes()).hexdigest(),
        )

    def sources(self, node: Any, pos: tuple[int, int]) -> tuple[Source, ...]:
        if not isinstance(node, list) or not node:
            self.error(pos, "'sources' must list at least one source; cite where the rule comes from")
            return ()
        out = []
        for i, item in enumerate(node):
            if isinstance(item, str) and item.strip():
                out.append(Source(item.strip()))
            elif isinstance(item, dict) and isinstance(item.get("title"), str) and set(item) <= {"title", "url"}:
                out.append(Source(item["title"], item.get("url")))
            else:
                self.error(yamlfile.item_pos(node, i), "a source is text or {title, url}")
        return tuple(out)


def rule_files(directory: Path) -> list[Path]:
    """The rule files of one rules folder, sorted."""
    return sorted(
        p for p in directory.rglob("*.yaml")
        if not (p.parent == directory and p.name in DATA_FILES)
        and "tables" not in p.relative_to(directory).parts
    )


def _safe_inside(directory: Path, path: Path) -> bool:
    """Rule files must stay in their folder: a symlink that leads out is refused."""
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def load_pack(dirs: list[Path] | None = None, select: Iterable[str] = (), ignore: Iterable[str] = ()) -> RulePack:
    """Load, validate and layer the rule folders; raise RuleConfigError with every problem."""
    dirs = [Path(d) for d in (dirs or [BUNDLED_RULES])]
    problems: list[ConfigProblem] = []
    for d in dirs:
        if not d.is_dir():
            problems.append(ConfigProblem(str(d), 1, 1, "no such rules folder"))
    if problems:
        raise RuleConfigError(problems)
    reference = load_reference(dirs, problems)
    types = field_types()
    rules: dict[str, Rule] = {}
    disabled: set[str] = set()  # ids a folder disables
    baseline: dict[str, Any] = {}
    for d in dirs:
        seen_here: dict[str, str] = {}
        baseline_path = d / "baseline_line.yaml"
        if baseline_path.exists():
            data, found = yamlfile.load(baseline_path)
            problems.extend(found)
            if isinstance(data, dict):
                baseline.update(data)
        for path in rule_files(d):
            if not _safe_inside(d, path):
                problems.append(ConfigProblem(str(path), 1, 1, "the file links outside its rules folder; copy it in instead"))
                continue
            data, found = yamlfile.load(path)
            problems.extend(found)
            if data is None:
                continue
            checker = _FileChecker(path, str(path), reference, types)
            result = checker.rule(data)
            problems.extend(checker.problems)
            if isinstance(result, str):
                disabled.add(result)
                if rules.pop(result, None) is None:
                    line, col = yamlfile.value_pos(data, "id")
                    problems.append(ConfigProblem(str(path), line, col, f"disables '{result}', which no earlier rules folder defines{did_you_mean(result, rules)}"))
            elif result is not None:
                if result.id in seen_here:
                    line, col = yamlfile.value_pos(data, "id")
                    problems.append(ConfigProblem(str(path), line, col, f"duplicate id '{result.id}', also in {seen_here[result.id]}; ids are unique within a folder"))
                    continue
                seen_here[result.id] = str(path)
                rules[result.id] = result
    for d in dirs:
        for path in sorted(d.rglob("*.yml")):
            problems.append(ConfigProblem(str(path), 1, 1, "rule and data files end in .yaml; rename it, or it is not loaded"))
    for payer_id, profile in reference.payers.items():
        for rule_id in profile.get("rule_severity") or {}:
            if rule_id not in rules and rule_id not in disabled:  # a later folder may disable a rule a profile names
                at = reference.setting_marks.get((f"payer {payer_id}", "rule_severity"), ("payers.yaml", 1, 1))
                problems.append(ConfigProblem(*at, f"payer {payer_id}: rule_severity names '{rule_id}', which is not a loaded rule{did_you_mean(rule_id, rules)}"))
    if not baseline:
        problems.append(ConfigProblem(str(dirs[0] / "baseline_line.yaml"), 1, 1, "no baseline line; expected a fully valid claim line that no rule fires on"))
    if problems:
        raise RuleConfigError(problems)
    _check_selection(select, ignore, rules)
    chosen = [r for r in rules.values() if _selected(r, select, ignore)]
    pack = RulePack(sorted(chosen, key=lambda r: r.id), reference, baseline, dirs)
    return pack


def _check_selection(select: Iterable[str], ignore: Iterable[str], rules: dict[str, Rule]) -> None:
    """An unknown --select/--ignore name is a bad argument (exit 2, one line), not a rules problem."""
    known = set(rules) | set(CAUSES)
    unknown = [(option, item) for option, items in (("--select", select), ("--ignore", ignore))
               for item in items if item not in known]
    if unknown:
        option, item = unknown[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise InputError(f"{option} '{item}' is neither a rule id nor a cause{did_you_mean(item, known)}{more}")


def _selected(rule: Rule, select: Iterable[str], ignore: Iterable[str]) -> bool:
    chosen = set(select)
    skipped = set(ignore)
    if chosen and rule.id not in chosen and rule.cause not in chosen:
        return False
    return rule.id not in skipped and rule.cause not in skipped


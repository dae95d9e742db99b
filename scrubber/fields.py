"""The fields rules may read: the contract's input columns and the derived fields.

A field's type decides which operators a rule may use on it and how its values are encoded for
the engine (see `compile.py` and `engine.py`). Derived fields register themselves in `derive.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "text"
    INT = "int"
    NUMBER = "number"
    DATE = "date"  # encoded for the engine as the integer YYYYMMDD, so it orders correctly
    BOOL = "bool"
    LIST = "list"  # a ;-separated list of codes; an empty list and a missing value are the same


@dataclass(frozen=True)
class InputColumn:
    """A column of the claims contract (§1)."""

    name: str
    type: FieldType
    required: bool
    description: str
    phi: bool = False  # never readable by rules, never printed


# The claims contract, §1, in its order. `referring_taxonomy` is an optional extension column
# beyond the contract: when an export carries it, rules can check who may refer.
INPUT_COLUMNS: tuple[InputColumn, ...] = (
    InputColumn("claim_id", FieldType.TEXT, True, "claim identifier"),
    InputColumn("line_no", FieldType.INT, True, "line number within the claim"),
    InputColumn("patient_id", FieldType.TEXT, True, "patient / member identifier", phi=True),
    InputColumn("payer_type", FieldType.TEXT, True, "medicare, medicare_advantage, medicaid or commercial"),
    InputColumn("payer_id", FieldType.TEXT, False, "payer identifier; selects a payer profile"),
    InputColumn("service_date", FieldType.DATE, True, "date of service"),
    InputColumn("submission_date", FieldType.DATE, False, "date the claim is (to be) submitted"),
    InputColumn("cpt", FieldType.TEXT, True, "CPT/HCPCS code"),
    InputColumn("modifiers", FieldType.LIST, False, "modifiers, ; or , separated"),
    InputColumn("units", FieldType.INT, True, "units billed"),
    InputColumn("minutes", FieldType.INT, False, "documented face-to-face minutes"),
    InputColumn("dx_codes", FieldType.LIST, False, "ICD-10-CM codes, first = primary"),
    InputColumn("pos", FieldType.TEXT, False, "place of service, 2 digits"),
    InputColumn("rendering_npi", FieldType.TEXT, True, "rendering provider NPI"),
    InputColumn("rendering_taxonomy", FieldType.TEXT, False, "NUCC taxonomy of the rendering provider"),
    InputColumn("billing_npi", FieldType.TEXT, False, "billing provider NPI"),
    InputColumn("referring_npi", FieldType.TEXT, False, "ordering / referring / certifying NPI"),
    InputColumn("order_date", FieldType.DATE, False, "date of the order or plan-of-care certification"),
    InputColumn("prior_auth_number", FieldType.TEXT, False, "prior authorization number"),
    InputColumn("session_id", FieldType.TEXT, False, "education session identifier"),
    InputColumn("group_size", FieldType.INT, False, "documented number of patients present"),
    InputColumn("curriculum_id", FieldType.TEXT, False, "standardized curriculum used"),
    InputColumn("charge", FieldType.NUMBER, False, "billed amount"),
)
EXTENSION_COLUMNS: tuple[InputColumn, ...] = (
    InputColumn("referring_taxonomy", FieldType.TEXT, False, "NUCC taxonomy of the referring provider"),
)
COLUMNS_BY_NAME = {c.name: c for c in INPUT_COLUMNS + EXTENSION_COLUMNS}
REQUIRED_COLUMNS = tuple(c.name for c in INPUT_COLUMNS if c.required)
PHI_COLUMNS = frozenset(c.name for c in INPUT_COLUMNS if c.phi)

PAYER_TYPES = ("medicare", "medicare_advantage", "medicaid", "commercial")

# The closed cause vocabulary (claims contract §3).
CAUSES = (
    "medical_necessity",
    "group_code",
    "missing_order",
    "unqualified_provider",
    "time_units",
    "invalid_code",
    "not_covered",
    "bundling",
    "modifier_pos",
    "prior_auth",
    "timely_filing",
    "duplicate",
    "frequency",
    "documentation",
    "invalid_input",
)
INPUT_PROBLEM_CAUSE = "invalid_input"  # the export itself is wrong: its rules read what the reader found
SEVERITIES = ("deny", "at-risk")

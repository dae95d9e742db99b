"""Translate the regex subset rules may use into durable-rules' own dialect.

Rules are written in familiar Python syntax. The engine's dialect (engine-notes §1.4) differs:
it escapes with `%` not `\\`, treats `^` and `$` as literal characters, always matches the whole
value, and silently accepts some broken patterns. So a pattern is translated only when the result
means exactly what Python's `re.fullmatch(pattern, value, re.ASCII | re.DOTALL)` means, and
rejected with a reason otherwise.

Values the engine sees are JSON text, where `"`, `\\` and control characters become escape
sequences. `engine.encode_text` maps each of them to a private-use character instead, so a
pattern, which may not name them, sees one character for one character.
"""

from __future__ import annotations

import re

MAX_REPEAT = 100  # the engine rejects {n} with n > 100 (error 501)
MAX_LENGTH = 2000  # the engine's DFA fails near 4,000 literal characters (error 503)

# Characters with a meaning in the engine's dialect: escaped with % when meant literally.
_ENGINE_SPECIALS = set(".|()[]{}*+?%")
_FORBIDDEN_LITERALS = {'"': "a double quote", "\\": "a backslash"}
_CLASS_ESCAPES = {"d": "0-9", "w": "0-9A-Za-z_"}
_ESCAPES = {
    "d": "[0-9]",
    "D": "[^0-9]",
    "w": "[0-9A-Za-z_]",
    "W": "[^0-9A-Za-z_]",
}
_UNSUPPORTED_ESCAPES = {
    "s": "\\s (whitespace) is not supported; name the characters, e.g. [ ]",
    "S": "\\S is not supported; name the characters",
    "b": "word boundaries (\\b) are not supported; the whole value is always matched",
    "B": "\\B is not supported",
    "A": "\\A is not needed: the whole value is always matched",
    "Z": "\\Z is not needed: the whole value is always matched",
}


class RegexError(ValueError):
    """The pattern cannot be run by the engine with Python's meaning."""


def python_flags() -> int:
    """The flags under which the Python meaning of a rule pattern is defined."""
    return re.ASCII | re.DOTALL


def translate(pattern: str) -> str:
    """Return the engine-dialect equivalent of a Python regex, or raise RegexError."""
    if not pattern:
        raise RegexError("the pattern is empty")
    try:
        re.compile(pattern, python_flags())
    except re.error as exc:
        raise RegexError(f"not a valid regular expression: {exc}") from None
    body = pattern
    if body.startswith("^"):
        body = body[1:]
    if body.endswith("$") and not body.endswith("\\$"):
        body = body[:-1]
    out: list[str] = []
    i = 0
    last_atom = False  # whether a quantifier may follow
    depth = 0
    while i < len(body):
        ch = body[i]
        if ch in _FORBIDDEN_LITERALS:
            if ch == "\\":
                out_piece, i = _escape(body, i)
                out.append(out_piece)
                last_atom = True
                continue
            raise RegexError(f"{_FORBIDDEN_LITERALS[ch]} cannot be matched by the engine")
        if ch in "^$":
            raise RegexError(f"'{ch}' is only allowed at the start/end; the whole value is always matched")
        if ord(ch) < 32 or ord(ch) == 127:
            raise RegexError("control characters cannot be matched by the engine")
        if ch == "[":
            piece, i = _char_class(body, i)
            out.append(piece)
            last_atom = True
            continue
        if ch == "(":
            if body.startswith("(?:", i):
                i += 3
            elif body.startswith("(?", i):
                raise RegexError("lookarounds, named groups and inline flags are not supported")
            else:
                i += 1
            depth += 1
            out.append("(")
            last_atom = False
            continue
        if ch == ")":
            depth -= 1
            out.append(")")
            i += 1
            last_atom = True
            continue
        if ch == "|":
            out.append("|")
            i += 1
            last_atom = False
            continue
        if ch in "*+?":
            if not last_atom:
                raise RegexError(f"'{ch}' has nothing to repeat")
            out.append(ch)
            i += 1
            if i < len(body) and body[i] in "?+":
                raise RegexError("lazy and possessive quantifiers are not supported")
            last_atom = False
            continue
        if ch == "{":
            m = re.match(r"\{(\d*)(?:,(\d*))?\}", body[i:])
            if m and m.group(1) == "" and m.group(2) is None:
                m = None  # "{}" and "{,}" are literal text in Python
            if not m:
                out.append("%{")
                i += 1
                last_atom = True
                continue
            low, high = m.group(1) or "0", m.group(2)  # Python reads {,n} as {0,n}
            if high == "":
                raise RegexError("open repeats {n,} are not supported; give an upper bound")
            if int(high if high is not None else low) == 0:
                raise RegexError("a repeat of zero times ({0}) is not supported; remove the item instead")
            if int(low) > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
                raise RegexError(f"repeat counts above {MAX_REPEAT} are not supported")
            out.append("{" + low + ("," + high if high is not None else "") + "}")
            i += len(m.group(0))
            if i < len(body) and body[i] in "?+":
                raise RegexError("lazy and possessive quantifiers are not supported")
            last_atom = False
            continue
        if ch == ".":
            out.append(".")
        elif ch in _ENGINE_SPECIALS:
            out.append("%" + ch)
        else:
            out.append(ch)
        i += 1
        last_atom = True
    result = "".join(out)
    if re.search(r"(?<!%)\((?:\||\))|(?<!%)\|(?:\||\))|^\||(?<!%)\|$", result):
        raise RegexError("empty groups and empty alternatives are not supported; use ? for an optional part")
    if len(result) > MAX_LENGTH:
        raise RegexError(f"the pattern is too long for the engine (more than {MAX_LENGTH} characters)")
    return result


def _escape(body: str, i: int) -> tuple[str, int]:
    """Translate the escape sequence at body[i] (a backslash)."""
    if i + 1 >= len(body):
        raise RegexError("the pattern ends with a backslash")
    nxt = body[i + 1]
    if nxt in _ESCAPES:
        return _ESCAPES[nxt], i + 2
    if nxt in _UNSUPPORTED_ESCAPES:
        raise RegexError(_UNSUPPORTED_ESCAPES[nxt])
    if nxt.isalnum():
        raise RegexError(f"the escape \\{nxt} is not supported")
    if nxt in _FORBIDDEN_LITERALS:
        raise RegexError(f"{_FORBIDDEN_LITERALS[nxt]} cannot be matched by the engine")
    # Only the engine's own specials take a % (measured: %$ %^ %/ %- %# are error 501).
    return ("%" + nxt if nxt in _ENGINE_SPECIALS else nxt), i + 2


def _char_class(body: str, i: int) -> tuple[str, int]:
    """Translate a bracket expression starting at body[i] == '['.

    Measured in the engine: `%` escapes only its own specials (`. | ( ) [ ] { } * + ? %`); other
    punctuation is literal as written; a literal `-` works only last in the class, and `^` only
    where it is not first. Literal dashes and carets are therefore moved to the end.
    """
    j = i + 1
    negate = j < len(body) and body[j] == "^"
    if negate:
        j += 1
    items: list[str] = []
    literal_dash = literal_caret = False
    first = True
    while j < len(body) and (body[j] != "]" or first):
        ch = body[j]
        first = False
        if ch == "\\":
            if j + 1 >= len(body):
                raise RegexError("the pattern ends with a backslash")
            nxt = body[j + 1]
            j += 2
            if nxt in _CLASS_ESCAPES:
                items.append(_CLASS_ESCAPES[nxt])
            elif nxt.isalnum():
                raise RegexError(f"the escape \\{nxt} is not supported inside [...]")
            elif nxt in _FORBIDDEN_LITERALS:
                raise RegexError(f"{_FORBIDDEN_LITERALS[nxt]} cannot be matched by the engine")
            elif nxt == "-":
                literal_dash = True
            elif nxt == "^":
                literal_caret = True
            else:
                items.append("%" + nxt if nxt in _ENGINE_SPECIALS else nxt)
            continue
        if ch in _FORBIDDEN_LITERALS:
            raise RegexError(f"{_FORBIDDEN_LITERALS[ch]} cannot be matched by the engine")
        if ord(ch) < 32 or ord(ch) == 127:
            raise RegexError("control characters cannot be matched by the engine")
        if ch == "[" and j + 1 < len(body) and body[j + 1] == ":":
            raise RegexError("POSIX classes such as [:digit:] are not supported")
        if ch == "-":
            single = bool(items) and (len(items[-1]) == 1 or (len(items[-1]) == 2 and items[-1][0] == "%"))
            if single and j + 1 < len(body) and body[j + 1] != "]":  # a range such as a-z
                nxt = body[j + 1]
                if nxt == "\\":
                    raise RegexError("ranges must be between two plain characters, e.g. [a-z]")
                items[-1] += "-" + ("%" + nxt if nxt in _ENGINE_SPECIALS else nxt)
                j += 2
                continue
            literal_dash = True
        elif ch == "^":
            literal_caret = True
        elif ch.isalnum():
            items.append(ch)
        else:
            items.append("%" + ch if ch in _ENGINE_SPECIALS else ch)
        j += 1
    if j >= len(body):
        raise RegexError("unterminated [...]")
    if not items and not literal_caret and literal_dash:
        return ("[^-]" if negate else "-"), j + 1
    if literal_caret and not items:
        if not negate and not literal_dash:
            return "^", j + 1  # [\^] alone: a caret, which is literal outside a class
        raise RegexError("a class holding only '^' (and '-') is not supported; write it as (^|-)")
    tail = ("^" if literal_caret else "") + ("-" if literal_dash else "")
    return "[" + ("^" if negate else "") + "".join(items) + tail + "]", j + 1

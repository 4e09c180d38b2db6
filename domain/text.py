"""Text that reaches a terminal or a log: what a producer may send, and how we echo it back.

Identifiers end up in tables, logs and terminals; a control character in one (an
ANSI escape, a right-to-left override, a zero-width space) can rewrite what an operator
sees or make two different ids look the same. And a rejection that echoes a producer's
input must not itself carry such characters, nor ten megabytes of it: `quote` is the
one way a reason cites input.
"""

from __future__ import annotations

import re
import unicodedata

QUOTE_LIMIT = 120
"""How many characters of an offending value a reason cites."""

_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Control (C0, DEL, C1), format (bidi controls, zero-width characters), lone surrogates,
and the line and paragraph separators."""

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""The embeddings, overrides and isolates that reorder how the text around them shows."""

_PROSE_WHITESPACE = frozenset("\n\t")

_PLAIN_KEY = re.compile(r"[\w\-/:@+#$]{1,64}", re.ASCII)
"""A key shown as it is in a field path; any other is quoted."""


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as a reason may cite it: repr-escaped, at most `limit` characters of it.

    `repr` escapes every character that is not printable, so an ANSI escape or a bidi
    override shows as `\\x1b` or `\\u202e` rather than acting on the terminal.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    if value is None or isinstance(value, bool | int | float):
        try:
            text = repr(value)
        except ValueError:  # an int too long to convert to text
            return "a very long integer"
        return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} digits)"
    return f"a {type(value).__name__}"


def segment(key: object) -> str:
    """One step of a field path (`attributes.lines.0.vat`); odd keys are quoted."""
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return key
    return quote(key, 40)


def readable(text: str, limit: int = 400) -> str:
    """A message from a library, made safe to show: escaped if need be, and bounded."""
    if text.isprintable() and len(text) <= limit:
        return text
    return quote(text, limit)[1:-1]


def one_line(error: BaseException) -> str:
    """An error as one line, `Type: message`, whatever newlines its message holds."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def control_character(text: str, *, prose: bool = False) -> str | None:
    """Why `text` may not be shown as it is, or None when it may.

    Identifiers allow no control or format character at all. Prose (a note) allows
    newline and tab, and the format characters real text needs (zero-width joiners in
    emoji and in Persian or Indic scripts, soft hyphens); it refuses the bidi controls
    that make text display in another order than it reads.
    """
    if text.isprintable():
        return None
    if prose:
        text_without_breaks = text.replace("\n", " ").replace("\t", " ")
        if text_without_breaks.isprintable():
            return None
    for index, char in enumerate(text):
        if _is_control(char, prose=prose):
            if unicodedata.category(char) == "Cs":
                return f"contains a lone surrogate U+{ord(char):04X} at index {index}"
            name = unicodedata.name(char, "")
            named = f" ({name})" if name else ""
            return f"contains control character U+{ord(char):04X}{named} at index {index}"
    return None


def _is_control(char: str, *, prose: bool) -> bool:
    if prose and char in _PROSE_WHITESPACE:
        return False
    category = unicodedata.category(char)
    if prose and category == "Cf":
        return char in _BIDI_CONTROLS
    return category in _CONTROL_CATEGORIES

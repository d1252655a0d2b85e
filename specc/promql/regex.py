"""Label-matcher regular expressions, compiled as Prometheus compiles them: RE2, anchored.

Prometheus compiles ``=~`` and ``!~`` values with Go's regexp (RE2 syntax) as
``^(?s:value)$``; google-re2 accepts and refuses the same syntax (``\\Q…\\E``, ``\\d``,
``[[:alpha:]]``, no look-around or back-references), in linear time.
"""

from __future__ import annotations

import functools
from typing import Any

#: RE2's words → Go regexp's (what promtool prints).
_GO_WORDS = {
    "missing ): ": "missing closing ): ",
    "missing ]: ": "missing closing ]: ",
    "bad repetition operator: ": "invalid nested repetition operator: ",
    "invalid perl operator: ": "invalid or unsupported Perl syntax: ",
    "invalid repetition size: ": "invalid repeat count: ",
    "unexpected ): ": "unexpected ): ",
    "trailing \\: ": "trailing backslash at end of expression: ",
    "invalid escape sequence: ": "invalid escape sequence: ",
    "invalid character class range: ": "invalid character class range: ",
    "missing argument to repetition operator: ": "missing argument to repetition operator: ",
}


@functools.cache
def _options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False
    return options


@functools.lru_cache(maxsize=4096)
def compile_regex(value: str) -> Any:
    """Return the compiled matcher regex; raise ValueError with Go's message if it is bad."""
    import re2

    try:
        # The value alone first, so that a message quotes what was written.
        re2.compile(value, _options())
        return re2.compile(f"^(?s:{value})$", _options())
    except re2.error as exc:
        raw = exc.args[0] if exc.args else b""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        if text == "trailing \\":
            text = "trailing backslash at end of expression: ``"
        for re2_words, go_words in _GO_WORDS.items():
            if text.startswith(re2_words):
                text = go_words + "`" + text[len(re2_words) :] + "`"
                break
        raise ValueError(f"error parsing regexp: {text}") from None

"""Kubernetes resource quantities: parsing and the canonical form the API server stores.

Rendering quantities the way the server stores them (``0.5`` → ``500m``, ``1024Mi`` →
``1Gi``) means desired and live objects compare byte for byte, with no normaliser in
the diff. The rules follow ``k8s.io/apimachinery/pkg/api/resource`` (Quantity.String):
the suffix family of the input is kept, values are rounded up to the nano unit, binary
values under 1024 or with a fraction fall back to decimal SI.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BINARY_SUFFIX = {v: k for k, v in _BINARY.items()}

_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE])?$"
)


@dataclass(frozen=True)
class Quantity:
    """An exact quantity and the suffix family it was written in."""

    value: Fraction
    format: Format

    def __str__(self) -> str:
        return canonical_string(self.value, self.format)


# A fleet repeats the same few quantities thousands of times; exact Fraction arithmetic
# is the slow part of validation without the cache. typed=True keeps 1, 1.0 and True apart.
@functools.lru_cache(maxsize=4096, typed=True)
def parse_quantity(text: str | int | float) -> Quantity:
    """Return the quantity ``text`` denotes; raise ``ValueError`` saying what is wrong."""
    if isinstance(text, bool):
        raise ValueError("expected a quantity such as 500m, 2, 128Mi or 10Gi, got a boolean")
    if isinstance(text, int | float):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError(f"quantity {text!r} is not a finite number")
        text = repr(text) if isinstance(text, float) else str(text)
    s = text.strip()
    m = _QUANTITY.match(s)
    if not m:
        raise ValueError(
            f"{text!r} is not a quantity (expected a number with an optional suffix "
            "such as m, k, M, G, Ki, Mi, Gi)"
        )
    number = Fraction(m.group("num"))
    suffix = m.group("suffix") or ""
    fmt: Format
    if suffix in _BINARY:
        value = number * (1 << _BINARY[suffix])
        fmt = "BinarySI"
    elif suffix[:1] in ("e", "E") and len(suffix) > 1:
        # 10**999999999 alone takes minutes: an exponent beyond what the digits can make
        # small again is too large, and a very negative one is as good as the smallest
        # (every value below 1n rounds up to 1n).
        exponent, digits = int(suffix[1:]), len(m.group("num"))
        if number and exponent > digits + 19:
            raise ValueError(f"quantity {text!r} is too large")
        exponent = max(min(exponent, digits + 19), -(digits + 19))
        value = number * Fraction(10) ** exponent
        fmt = "DecimalExponent"
    else:
        value = number * Fraction(10) ** _DECIMAL[suffix]
        fmt = "DecimalSI"
    if abs(value) >= Fraction(2) ** 63:
        raise ValueError(f"quantity {text!r} is too large")
    return Quantity(value, fmt)


def canonical_string(value: Fraction, fmt: Format) -> str:
    """Return ``value`` in the canonical form the API server would store."""
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if fmt == "BinarySI" and magnitude >= 1024 and magnitude.denominator == 1:
        n = magnitude.numerator
        exp = 0
        while n % 1024 == 0 and exp < 60:
            n //= 1024
            exp += 10
        return f"{sign}{n}{_BINARY_SUFFIX.get(exp, '')}"
    # Sub-nano precision is rounded up, as the server does.
    n = math.ceil(magnitude * 10**9)
    exp = -9
    while n % 1000 == 0 and exp < 18:
        n //= 1000
        exp += 3
    if fmt == "DecimalExponent":
        return f"{sign}{n}" + (f"e{exp}" if exp else "")
    return f"{sign}{n}{_DECIMAL_SUFFIX[exp]}"


@functools.lru_cache(maxsize=4096, typed=True)
def canonical_quantity(text: str | int | float) -> str:
    """Return the canonical string of a quantity written as ``text``."""
    return str(parse_quantity(text))

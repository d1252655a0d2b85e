"""Kubernetes ``resource.Quantity`` parsing and canonical form.

The API server stores every quantity in canonical form (``0.5`` → ``500m``,
``1024Mi`` → ``1Gi``, ``1.5Gi`` → ``1536Mi``), so the double must too. The rules
follow ``k8s.io/apimachinery/pkg/api/resource`` (``quantity.go``, ``CanonicalizeBytes``).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_BY_EXP = {exp: suffix for suffix, exp in _DECIMAL.items()}
_BINARY_BY_EXP = {exp: suffix for suffix, exp in _BINARY.items()}
_BINARY_BY_EXP[0] = ""

_QUANTITY = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$")


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


def parse_quantity(text: str) -> tuple[Fraction, str]:
    """Return the exact value of ``text`` and its format (BinarySI, DecimalSI or DecimalExponent)."""
    match = _QUANTITY.match(text.strip())
    if match is None or (match.group(2) == "" and not match.group(3)):
        raise QuantityError(f"quantities must match the regular expression {_QUANTITY.pattern!r}")
    sign, whole, frac, suffix = match.groups()
    digits = (whole or "") + (frac or "")
    value = Fraction(int(digits or "0"), 10 ** len(frac or ""))
    suffix = suffix or ""
    if suffix in _BINARY:
        value *= 2 ** _BINARY[suffix]
        fmt = "BinarySI"
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
        fmt = "DecimalSI"
    else:
        value *= Fraction(10) ** int(suffix[1:])
        fmt = "DecimalExponent"
    if sign == "-":
        value = -value
    # Quantities keep nano precision; anything finer rounds away from zero (inf.RoundUp).
    scaled = value * 10**9
    if scaled.denominator != 1:
        rounded = -((-abs(scaled)) // 1)
        value = Fraction(rounded if value > 0 else -rounded, 10**9)
    return value, fmt


def _decimal_parts(value: Fraction) -> tuple[int, int]:
    """Return (mantissa, exponent) with the exponent a multiple of 3 and no spare factors of 1000."""
    exponent = 0
    while value.denominator != 1:
        value *= 10
        exponent -= 1
    mantissa = int(value)
    while mantissa != 0 and mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    while exponent % 3 != 0:
        mantissa *= 10
        exponent -= 1
    return mantissa, exponent


def format_quantity(value: Fraction, fmt: str) -> str:
    """Return the canonical text the API server stores for ``value`` in format ``fmt``."""
    if value == 0:
        return "0"
    if fmt == "BinarySI" and (-1024 < value < 1024 or value.denominator != 1):
        fmt = "DecimalSI"
    if fmt == "BinarySI":
        mantissa, exponent = int(value), 0
        while mantissa % 1024 == 0 and exponent < 60:
            mantissa //= 1024
            exponent += 10
        return f"{mantissa}{_BINARY_BY_EXP[exponent]}"
    mantissa, exponent = _decimal_parts(value)
    if fmt == "DecimalExponent":
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    while exponent > 18:
        mantissa *= 1000
        exponent -= 3
    while exponent < -9:
        # Sub-nano values were rounded at parse time; keep the text exact anyway.
        exponent += 3
        mantissa = mantissa // 1000
    return f"{mantissa}{_DECIMAL_BY_EXP[exponent]}"


@lru_cache(maxsize=4096)
def canonical_quantity(raw: str | int | float) -> str:
    """Return the canonical form of a quantity given as text or a JSON number."""
    if isinstance(raw, bool):
        raise QuantityError("quantities must be strings or numbers")
    if isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, float):
        text = repr(raw) if not raw.is_integer() else str(int(raw))
    else:
        text = raw
    value, fmt = parse_quantity(text)
    return format_quantity(value, fmt)

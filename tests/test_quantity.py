"""Quantities: parsing and the canonical form the API server stores."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specc.quantity import canonical_quantity, parse_quantity


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("0.5", "500m"),
        (0.5, "500m"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("1000000000", "1G"),
        (1000000000, "1G"),
        ("1500", "1500"),
        ("1.5", "1500m"),
        (1.5, "1500m"),
        ("100m", "100m"),
        ("1000m", "1"),
        ("0", "0"),
        ("0Gi", "0"),
        ("128974848", "128974848"),
        ("129e6", "129e6"),
        ("1e3", "1e3"),
        ("1k", "1k"),
        ("1.5k", "1500"),
        ("0.5Ki", "512"),  # binary under 1024 falls back to decimal
        ("1536Ki", "1536Ki"),
        ("1n", "1n"),
        ("0.1n", "1n"),  # sub-nano rounds up
        # Exponents whose power of ten alone would take minutes (10**999999999).
        ("0e999999999", "0"),
        ("1e-999999999", "1e-9"),
        ("0.00000000000000000001e30", "10e9"),
        ("+2", "2"),
        ("-1Gi", "-1Gi"),
    ],
)
def test_canonical_form_matches_the_api_server(written: str | float, canonical: str) -> None:
    assert canonical_quantity(written) == canonical


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("1x", "is not a quantity"),
        ("Gi", "is not a quantity"),
        ("1 Gi", "is not a quantity"),
        ("1.2.3", "is not a quantity"),
        ("", "is not a quantity"),
        ("1GiB", "is not a quantity"),
        (True, "got a boolean"),
        (float("inf"), "not a finite number"),
        (float("nan"), "not a finite number"),
        ("10E", "too large"),
        ("1e19", "too large"),
        ("1e999999999", "too large"),
        ("-1e999999999", "too large"),
    ],
)
def test_malformed_quantities_are_refused_saying_why(written: str | float, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_quantity(written)


@pytest.mark.parametrize(
    ("written", "value", "fmt"),
    [
        ("1Ki", Fraction(1024), "BinarySI"),
        ("250m", Fraction(1, 4), "DecimalSI"),
        ("2e3", Fraction(2000), "DecimalExponent"),
    ],
)
def test_parse_keeps_the_exact_value_and_suffix_family(
    written: str, value: Fraction, fmt: str
) -> None:
    q = parse_quantity(written)
    assert (q.value, q.format) == (value, fmt)


_suffixes = st.sampled_from(["", "n", "u", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"])
_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.tuples(st.integers(0, 10**4), st.integers(0, 10**4)).map(lambda t: f"{t[0]}.{t[1]}"),
)


@given(number=_numbers, suffix=_suffixes)
def test_canonical_form_is_a_fixed_point_and_keeps_the_value(number: str, suffix: str) -> None:
    written = number + suffix
    canonical = canonical_quantity(written)
    assert canonical_quantity(canonical) == canonical
    exact = parse_quantity(written).value
    # Only sub-nano precision may be lost, and only upwards.
    assert 0 <= parse_quantity(canonical).value - exact < Fraction(1, 10**9)

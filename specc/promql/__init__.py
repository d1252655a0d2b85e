"""PromQL as Prometheus 3 parses it: a bounded, linear-time parser with Prometheus's messages.

:func:`check` returns the first problem of an expression (the one ``promtool check
rules`` reports) with its offset, so that callers can point at the line and column
inside a multi-line ``expr``.
"""

from __future__ import annotations

from specc.promql.parser import MAX_DEPTH, MAX_LENGTH, Node, PromQLError, parse

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Node", "PromQLError", "check", "parse"]


def check(text: str) -> PromQLError | None:
    """Return the problem Prometheus would report for expression ``text``, or None."""
    _, errors = parse(text)
    return errors[0] if errors else None

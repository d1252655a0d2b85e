"""Label and field selectors as LIST and WATCH take them.

Label selector syntax is ``k8s.io/apimachinery/pkg/labels``: equality (``=``, ``==``,
``!=``), set-based (``in``, ``notin``), existence (``key``, ``!key``), ANDed by commas.
Field selectors support ``metadata.name`` and ``metadata.namespace`` with ``=``, ``==``
and ``!=``, which every resource supports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]


class SelectorError(ValueError):
    """The selector does not parse."""


def _split(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET = re.compile(r"^([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ = re.compile(r"^([^\s!=]+)\s*(==|=|!=)\s*([^\s,]*)$")
_KEY = re.compile(r"^(!?)\s*([A-Za-z0-9][-A-Za-z0-9_./]*)$")


Requirement = tuple[str, str, frozenset[str]]  # (key, operator, values)


def _matches(requirements: list[Requirement], values: dict[str, Any]) -> bool:
    for key, op, wanted in requirements:
        present = key in values
        value = values.get(key)
        if op in ("=", "==", "in") and (not present or value not in wanted):
            return False
        if op in ("!=", "notin") and present and value in wanted:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


def parse_label_selector(text: str) -> Predicate:
    """Return a predicate over label maps for a label selector string."""
    requirements: list[Requirement] = []
    for term in _split(text or ""):
        match = _SET.match(term)
        if match:
            key, op, raw = match.groups()
            values = frozenset(v.strip() for v in raw.split(",") if v.strip())
            requirements.append((key, op, values))
            continue
        match = _EQ.match(term)
        if match:
            key, op, value = match.groups()
            requirements.append((key, op, frozenset({value})))
            continue
        match = _KEY.match(term)
        if match:
            negate, key = match.groups()
            requirements.append((key, "!" if negate else "exists", frozenset()))
            continue
        raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: _matches(requirements, labels)


FIELDS = ("metadata.name", "metadata.namespace")


def _fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", "")}


def parse_field_selector(text: str) -> Predicate:
    """Return a predicate over objects for a field selector string."""
    requirements: list[Requirement] = []
    for term in _split(text or ""):
        match = _EQ.match(term)
        if not match:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = match.groups()
        if field not in FIELDS:
            raise SelectorError(f"field label not supported: {field}")
        requirements.append((field, op, frozenset({value})))
    return lambda obj: _matches(requirements, _fields(obj))

"""jsonschema_rs errors in plain words, at the path of the field they concern."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from specc.check.kubernetes import QUANTITY_PATTERN
from specc.errors import did_you_mean

if TYPE_CHECKING:
    # Only an invalid object is described; a start that finds none never loads the
    # library (see specc.check.kubernetes).
    import jsonschema_rs

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_ITEM = re.compile(r"^\[(\d+)\] (.*)$", re.S)

_ARTICLE = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


@dataclass(frozen=True)
class Problem:
    """One schema violation: where in the object, and what was expected."""

    field_path: str
    message: str
    #: The path as keys and indexes, to find where the field is written.
    loc: tuple[str | int, ...] = ()


def field_path(parts: Sequence[str | int]) -> str:
    """Return ``spec.template.spec.containers[0].image`` for a JSON instance path.

    Keys that are not identifiers (label keys such as ``app.kubernetes.io/name``) are
    quoted in brackets so the path stays unambiguous.
    """
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.match(p):
            out += f".{p}" if out else p
        else:
            out += f"[{json.dumps(p)}]"
    return out


def describe_errors(
    errors: Iterator[jsonschema_rs.ValidationError],
    schema: dict[str, Any] | None,
    prefix: Sequence[str | int] = (),
    limit: int = 20,
) -> list[Problem]:
    """Return one :class:`Problem` per failing field, at most ``limit`` of them.

    ``schema`` is the schema validated against; it is only read to suggest the
    field a misspelt one was meant to be. One message per field: a value that fails
    both ``type`` and ``anyOf`` (int-or-string) is one problem, not two.
    """
    out: list[Problem] = []
    seen: set[str] = set()
    for error in errors:
        for problem in _describe(error, schema, prefix):
            if problem.field_path in seen:
                continue
            seen.add(problem.field_path)
            out.append(problem)
            if len(out) >= limit:
                return out
    return out


def _describe(
    error: jsonschema_rs.ValidationError,
    schema: dict[str, Any] | None,
    prefix: Sequence[str | int],
) -> list[Problem]:
    from jsonschema_rs import ValidationErrorKind as _KIND

    kind = error.kind
    at = [*prefix, *error.instance_path]
    if isinstance(kind, _KIND.AdditionalProperties):
        known = _declared_properties(schema, error.schema_path)
        return [
            Problem(field_path([*at, name]), _unknown(name, known), (*at, name))
            for name in sorted(kind.unexpected)
        ]
    if isinstance(kind, _KIND.UnevaluatedProperties):
        return [
            Problem(field_path([*at, n]), f"unknown field {n!r}", (*at, n)) for n in kind.unexpected
        ]
    if isinstance(kind, _KIND.Required):
        # A missing field is reported where its parent is written.
        return [Problem(field_path([*at, kind.property]), "required field is missing", tuple(at))]
    if isinstance(kind, _KIND.Custom):
        # specc's own keywords (CRD list semantics) name the item they concern: "[3] ...".
        item = _ITEM.match(error.message)
        if item:
            where = [*at, int(item.group(1))]
            return [Problem(field_path(where), item.group(2), tuple(where))]
        return [Problem(field_path(at), error.message, tuple(at))]
    return [Problem(field_path(at), _message(error), tuple(at))]


def _message(error: jsonschema_rs.ValidationError) -> str:
    from jsonschema_rs import ValidationErrorKind as _KIND

    kind = error.kind
    got = describe_value(error.instance)
    if isinstance(kind, _KIND.Type):
        return f"expected {_either(kind.types)}, got {got}"
    if isinstance(kind, _KIND.Enum):
        options = ", ".join(json.dumps(o) for o in kind.options if o is not None)
        return f"expected one of {options}, got {got}"
    if isinstance(kind, _KIND.Constant):
        return f"expected {json.dumps(kind.expected_value)}, got {got}"
    if isinstance(kind, _KIND.Minimum):
        return f"must be at least {kind.limit}, got {got}"
    if isinstance(kind, _KIND.Maximum):
        return f"must be at most {kind.limit}, got {got}"
    if isinstance(kind, _KIND.ExclusiveMinimum):
        return f"must be greater than {kind.limit}, got {got}"
    if isinstance(kind, _KIND.ExclusiveMaximum):
        return f"must be less than {kind.limit}, got {got}"
    if isinstance(kind, _KIND.MinLength):
        return f"must be at least {kind.limit} characters long, got {got}"
    if isinstance(kind, _KIND.MaxLength):
        return f"must be at most {kind.limit} characters long"
    if isinstance(kind, _KIND.MinItems):
        return f"must have at least {kind.limit} item{'s' if kind.limit != 1 else ''}"
    if isinstance(kind, _KIND.MaxItems):
        return f"must have at most {kind.limit} item{'s' if kind.limit != 1 else ''}"
    if isinstance(kind, _KIND.Pattern):
        if kind.pattern == QUANTITY_PATTERN:
            return f"expected a quantity such as 500m, 1Gi or 2, got {got}"
        return f"{got} does not match the pattern {kind.pattern}"
    if isinstance(kind, _KIND.UniqueItems):
        return "items must be unique"
    if isinstance(kind, _KIND.MultipleOf):
        return f"must be a multiple of {kind.multiple_of}, got {got}"
    if isinstance(kind, _KIND.Format):
        return f"expected the format {kind.format}, got {got}"
    if isinstance(kind, (_KIND.AnyOf, _KIND.OneOfNotValid)):
        return _no_branch(kind.context, error.instance_path, got)
    if isinstance(kind, _KIND.OneOfMultipleValid):
        if error.instance is None:
            return "null is not allowed here: remove the field or give it a value"
        return f"{got} matches more than one of the allowed forms"
    return error.message


def _no_branch(
    context: list[list[jsonschema_rs.ValidationError]], at: Sequence[str | int], got: str
) -> str:
    """Explain a value that fits none of the branches of an anyOf/oneOf."""
    from jsonschema_rs import ValidationErrorKind as _KIND

    types: list[str] = []
    for branch in context:
        for e in branch:
            if list(e.instance_path) != list(at):
                continue
            if isinstance(e.kind, _KIND.Type):
                types.extend(t for t in e.kind.types if t not in types)
            else:
                # A branch of the right type rejected the value itself (a quantity
                # "1GB" fails the pattern branch and the number branch).
                return _message(e)
    if types:
        return f"expected {_either(types)}, got {got}"
    return f"{got} does not match any of the allowed forms"


def _either(types: Sequence[str]) -> str:
    # null is allowed almost everywhere in these schemas and never what a user meant.
    words = [_ARTICLE.get(t, t) for t in types if t != "null"] or ["null"]
    return " or ".join(words)


def describe_value(value: Any) -> str:
    """Return a short phrase naming a JSON value ("the string '3'", "a list", "3")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {json.dumps(text)}"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _unknown(name: str, known: list[str]) -> str:
    return f"unknown field {name!r}{did_you_mean(name, known, cutoff=0.75)}"


def _declared_properties(
    schema: dict[str, Any] | None, schema_path: Sequence[str | int]
) -> list[str]:
    """Return the properties declared next to the failing ``additionalProperties``."""
    node: Any = schema
    for step in schema_path[:-1]:
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return []
    if isinstance(node, dict) and isinstance(node.get("properties"), dict):
        return list(node["properties"])
    return []

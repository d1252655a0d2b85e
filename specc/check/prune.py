"""A schema cut down to the parts some given objects reach, for a cheaper compile.

``jsonschema_rs`` compiles every subschema reachable from the root, and the big ones
cost: 34 ms for the Alertmanager CRD, 23 ms for Prometheus, 8–17 ms for a kind holding
a PodSpec, ~0.15 s for the example fleet's check. A fleet's few objects of a kind use a
small part of it. The subschema of a property that none of the objects has is never
applied to anything, so replacing it with ``true`` changes no verdict and no error; the
property stays declared (``additionalProperties: false`` and typo hints read the names).
By induction over the schema, for every node and the values that reach it:

- ``properties``: each property's schema is cut for the values the objects hold there,
  or ``true`` when none does;
- ``items`` (one schema) for every element, ``additionalProperties`` (a schema) for the
  values of undeclared keys (a superset of those it applies to: safe);
- ``allOf``/``anyOf``/``oneOf``/``not``/``if``/``then``/``else`` for the same values;
- a node that is only a ``$ref`` into ``$defs`` is replaced by its target, cut for the
  values (so a shared definition is cut per place); ``$defs`` stay for what is kept;
- every other keyword is kept as it is, which is always exact.

Only worth it for a few objects: the walk is Python over the objects, the full
validator a one-off cost shared by any number of them (see :data:`MAX_OBJECTS`).
"""

from __future__ import annotations

import json
from typing import Any

#: Above this many objects of one kind, the full (cached) validator is used.
MAX_OBJECTS = 32

_REF = "#/$defs/"
_SAME = ("not", "if", "then", "else")
_EACH = ("allOf", "anyOf", "oneOf")


def for_instances(schema: dict[str, Any], instances: list[Any]) -> dict[str, Any]:
    """Return ``schema`` with the subschemas none of ``instances`` reaches set to ``true``."""
    defs = schema.get("$defs")
    out = _prune(schema, instances, defs if isinstance(defs, dict) else {}, frozenset())
    assert isinstance(out, dict)
    if "$defs" in out and not _refers({k: v for k, v in out.items() if k != "$defs"}):
        del out["$defs"]  # every reference was followed: the compiler need not index them
    return out


def _refers(node: Any) -> bool:
    """Whether ``node`` may hold a ``$ref``: the serialised text is searched (one C call
    instead of a Python walk of the kept tree); a property or value spelled "$ref" only
    keeps ``$defs`` that were not needed, which is always correct."""
    return '"$ref"' in json.dumps(node)


def _prune(node: Any, values: list[Any], defs: dict[str, Any], chain: frozenset[str]) -> Any:
    if not isinstance(node, dict):
        return node  # a boolean schema
    ref = node.get("$ref")
    if len(node) == 1 and isinstance(ref, str) and ref.startswith(_REF) and ref not in chain:
        target = defs.get(ref[len(_REF) :])
        if isinstance(target, dict):
            # ``chain``: refs followed without descending into the values (a ref cycle).
            return _prune(target, values, defs, chain | {ref})
        return node
    out = dict(node)
    props = node.get("properties")
    objects = [v for v in values if isinstance(v, dict)]
    if isinstance(props, dict):
        cut: dict[str, Any] = {}
        for name, sub in props.items():
            held = [o[name] for o in objects if name in o]
            cut[name] = _prune(sub, held, defs, frozenset()) if held else True
        out["properties"] = cut
    items = node.get("items")
    if isinstance(items, dict):
        elements = [e for v in values if isinstance(v, list) for e in v]
        out["items"] = _prune(items, elements, defs, frozenset()) if elements else True
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        declared = props if isinstance(props, dict) else {}
        held = [o[k] for o in objects for k in o if k not in declared]
        out["additionalProperties"] = _prune(extra, held, defs, frozenset()) if held else True
    for key in _SAME:
        if key in node:
            out[key] = _prune(node[key], values, defs, chain)
    for key in _EACH:
        branches = node.get(key)
        if isinstance(branches, list):
            out[key] = [_prune(b, values, defs, chain) for b in branches]
    return out

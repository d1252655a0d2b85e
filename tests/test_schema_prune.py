"""A validator compiled from the schema cut to a few objects (specc.check.prune) gives the
verdicts and findings of the full schema, for valid and broken objects alike."""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path
from typing import Any

import pytest

from specc.check import CrdSchemas, check_objects, prune
from specc.check.kubernetes import KubernetesSchemas, compile_schema
from specc.compile import compile_fleet, fleet_crd_sources
from specc.objects import DesiredObject
from specc.pipeline import validate_path

FLEET = Path(__file__).resolve().parent.parent / "fleet"
#: Values that break most fields: a wrong type, an unknown key, null, a negative number.
_BAD: list[Any] = ["not-a-number", {"bogus": 1}, None, -5, [1, "x"], 2**40]


def _paths(node: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*here, i))
    return out


def _set(body: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _broken(objects: list[DesiredObject], seed: int) -> list[DesiredObject]:
    """Return copies of ``objects``, each with one field (or a new key) set to a bad value."""
    rng = random.Random(seed)
    out = []
    for obj in objects:
        body = copy.deepcopy(obj.body)
        paths = [p for p in _paths(body) if p[0] not in ("apiVersion", "kind")]
        path = rng.choice(paths)
        if rng.random() < 0.3 and isinstance(body.get("spec"), dict):
            body["spec"]["unknownField" + str(seed)] = 1
        else:
            _set(body, path, rng.choice(_BAD))
        out.append(dataclasses.replace(obj, body=body))
    return out


def _findings(objects: list[DesiredObject], version: str, crds: CrdSchemas) -> list[str]:
    return sorted(
        f"{f.position} {f.subject} {f.field_path} {f.message}"
        for f in check_objects(objects, version, crds)
    )


@pytest.mark.parametrize("seed", range(6))
def test_cut_and_full_schemas_find_the_same(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECC_CACHE_DIR", "off")  # no kept verdicts: both really check
    fleet = validate_path(FLEET)
    crds = CrdSchemas.from_documents(fleet_crd_sources(fleet))
    for render in compile_fleet(fleet, None):
        objects = render.objects if seed == 0 else _broken(render.objects, seed)
        cut = _findings(objects, render.kubernetes_version, crds)
        with monkeypatch.context() as m:
            m.setattr(prune, "MAX_OBJECTS", -1)  # every kind checked in full
            full = _findings(objects, render.kubernetes_version, crds)
        assert cut == full
        if seed:
            assert full, "the broken objects are found broken"


def test_an_absent_property_is_cut_but_stays_declared() -> None:
    schemas = KubernetesSchemas("1.33")
    full = schemas.schema("apps/v1", "Deployment")
    assert full is not None
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    cut = prune.for_instances(full, [body])
    assert cut["properties"]["spec"] is True and "status" in cut["properties"]
    assert "$defs" not in cut  # every followed reference was inlined
    validator = compile_schema(cut)
    assert validator.is_valid(body)
    assert not validator.is_valid({**body, "spce": {}})  # still unknown to the cut schema

"""The JSON Schemas editors check fleet files with: a description on every field, typed
overrides, name patterns, and agreement with the validator on real documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from specc.schemas import kind_schemas
from specc.spec import KINDS
from tests.helpers import FLEET

SCHEMAS = kind_schemas()


def properties(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Return every (place, property schema) below ``node``."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            out.append((f"{where}.{name}", prop))
        for key, value in node.items():
            out += properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for item in node:
            out += properties(item, where)
    return out


@pytest.mark.parametrize("name", sorted(SCHEMAS), ids=str)
def test_every_field_of_every_schema_has_a_description(name: str) -> None:
    missing = [where for where, prop in properties(SCHEMAS[name]) if not prop.get("description")]
    assert not missing, f"{name}: fields without a description: {missing}"


@pytest.mark.parametrize("name", sorted(SCHEMAS), ids=str)
def test_no_field_carries_a_generated_title(name: str) -> None:
    # Titles like "Targetcpuutilization" were what editors showed instead of a description.
    assert not [where for where, prop in properties(SCHEMAS[name]) if "title" in prop]


def documents(root: Path) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") in KINDS:
                out.append((f"{path.relative_to(root)}:{doc['kind']}", doc))
    return out


def validator(kind: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(SCHEMAS[f"{kind.lower()}.json"])


def schema_errors(doc: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator(doc["kind"]).iter_errors(doc)
    ]


@pytest.mark.parametrize(
    ("where", "doc"), documents(FLEET), ids=lambda x: x if isinstance(x, str) else ""
)
def test_every_example_document_passes_its_kinds_schema(where: str, doc: dict[str, Any]) -> None:
    assert schema_errors(doc) == [], where


def web() -> dict[str, Any]:
    (doc,) = yaml.safe_load_all((FLEET / "apps/storefront/web.yaml").read_text(encoding="utf-8"))
    return dict(doc)


def test_a_typo_in_an_override_is_a_schema_error() -> None:
    doc = web()
    doc["overrides"]["environments"]["dev"] = {"replicaz": 2}
    (error,) = schema_errors(doc)
    assert error.startswith("overrides.environments.dev: Additional properties are not allowed")


def test_an_override_is_a_partial_spec_that_may_remove_a_field() -> None:
    doc = web()
    # Only maxReplicas of autoscaling (merged onto the base's), and null removes the budget.
    doc["overrides"]["clusters"] = {
        "prod-eu": {"autoscaling": {"maxReplicas": 40}, "disruptionBudget": None}
    }
    assert schema_errors(doc) == []
    doc["overrides"]["clusters"]["prod-eu"]["autoscaling"]["maxReplicas"] = "many"
    (error,) = schema_errors(doc)
    assert error.startswith("overrides.clusters.prod-eu.autoscaling")


@pytest.mark.parametrize("name", ["Web", "../../escaped", "a" * 64, "-web"])
def test_names_the_validator_refuses_fail_the_schema_too(name: str) -> None:
    doc = web()
    doc["metadata"]["name"] = name
    assert [e.split(":")[0] for e in schema_errors(doc)] == ["metadata.name"]

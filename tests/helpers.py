"""Shared helpers for tests that work on a copy of the example fleet."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from specc.errors import Finding, ValidationError
from specc.pipeline import validate_path
from specc.validate import ValidFleet

#: The example fleet bundled with the repository.
FLEET = Path(__file__).resolve().parent.parent / "fleet"


def app_count() -> int:
    """Return the number of app documents in the example fleet (it grows with the kinds)."""
    return sum(
        p.read_text(encoding="utf-8").count("\nkind: ") for p in (FLEET / "apps").rglob("*.yaml")
    )


def copy_fleet(tmp_path: Path) -> Path:
    """Return the root of a fresh copy of fleet/ under ``tmp_path``."""
    root = tmp_path / "fleet"
    shutil.copytree(FLEET, root)
    return root


def edit(root: Path, rel: str, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in ``root/rel`` with ``new``."""
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def write(root: Path, rel: str, text: str) -> Path:
    """Write ``text`` to ``root/rel``, creating folders; return the path."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(root: Path, rel: str, needle: str) -> int:
    """Return the 1-based line of the one line in ``root/rel`` containing ``needle``."""
    lines = (root / rel).read_text(encoding="utf-8").splitlines()
    hits = [i + 1 for i, line in enumerate(lines) if needle in line]
    assert len(hits) == 1, f"{needle!r} on lines {hits} of {rel}"
    return hits[0]


def findings(root: Path) -> list[Finding]:
    """Return the findings of validating ``root``; fail if it is valid."""
    with pytest.raises(ValidationError) as info:
        validate_path(root)
    return info.value.findings


def valid(root: Path) -> ValidFleet:
    return validate_path(root)


def widget_crd(spec_properties: dict[str, Any], served: bool = True) -> dict[str, Any]:
    """Return the CRD of ``example.com/v1`` Widget whose ``spec`` declares these properties."""
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": spec_properties}},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": served, "schema": {"openAPIV3Schema": schema}}],
        },
    }

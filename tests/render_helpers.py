"""Helpers of the compile, render and determinism tests: small fleets on disk, lookups."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

from specc.compile import compile_fleet
from specc.objects import ClusterRender, DesiredObject
from specc.pipeline import validate_path

#: The example fleet bundled with the repository.
EXAMPLE_FLEET = Path(__file__).resolve().parents[1] / "fleet"

#: A fleet with one environment per tier and two prod clusters; prod defaults to 3 replicas.
SMALL_FLEET = """\
apiVersion: specc.dev/v1alpha1
kind: Fleet
metadata: {name: small}
spec:
  environments:
    - name: dev
    - name: prod
      defaults: {replicas: 3}
  clusters:
    - {name: dev, environment: dev, labels: {tier: dev}}
    - {name: prod-a, environment: prod, labels: {tier: prod, region: a}}
    - {name: prod-b, environment: prod, labels: {tier: prod, region: b}}
"""

SMALL_TEAM = """\
apiVersion: specc.dev/v1alpha1
kind: Team
metadata: {name: team-a}
"""


def write_fleet(root: Path, files: dict[str, str], *, base: bool = True) -> Path:
    """Write ``files`` (relative path → YAML text, dedented) under ``root``; return ``root``.

    With ``base``, fleet.yaml and teams/team-a.yaml of the small fleet come first
    (``files`` may replace them).
    """
    everything = {"fleet.yaml": SMALL_FLEET, "teams/team-a.yaml": SMALL_TEAM} if base else {}
    everything.update(files)
    for rel, text in everything.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def copy_example_fleet(dest: Path) -> Path:
    """Copy the example fleet to ``dest`` (for tests that change it); return ``dest``."""
    shutil.copytree(EXAMPLE_FLEET, dest)
    return dest


def compile_path(root: Path, clusters: list[str] | None = None) -> dict[str, ClusterRender]:
    """Return the renders of the fleet at ``root`` (validated, compiled, not checked), by cluster."""
    return {r.cluster: r for r in compile_fleet(validate_path(root), clusters)}


def find(render: ClusterRender, kind: str, name: str) -> DesiredObject:
    """Return the one object of ``kind`` named ``name``; fail the test if not exactly one."""
    hits = [o for o in render.objects if o.kind == kind and o.name == name]
    assert len(hits) == 1, f"{kind}/{name}: {len(hits)} objects in {render.cluster}"
    return hits[0]


def body(render: ClusterRender, kind: str, name: str) -> dict[str, Any]:
    """Return the body of the one object of ``kind`` named ``name``."""
    return find(render, kind, name).body


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Return ``value`` as leaf path → leaf value (``a.b[0].c``), for comparing objects."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def differences(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    """Return the leaf paths whose values differ between ``a`` and ``b``."""
    fa, fb = flatten(a), flatten(b)
    return {k for k in fa.keys() | fb.keys() if fa.get(k, ...) != fb.get(k, ...)}

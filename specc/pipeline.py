"""The stages chained: path → loaded → validated → compiled → checked.

A fleet that fails any stage raises a FleetError listing every problem of that stage;
nothing after it runs, so a broken commit never reaches a cluster.
"""

from __future__ import annotations

from pathlib import Path

from specc.errors import CheckError, Finding
from specc.load import load_fleet
from specc.objects import ClusterRender
from specc.validate import ValidFleet, validate_fleet


def validate_path(root: Path) -> ValidFleet:
    """Return the validated fleet at ``root``; raise a FleetError listing every problem."""
    return validate_fleet(load_fleet(root))


def compile_checked(fleet: ValidFleet, clusters: list[str] | None = None) -> list[ClusterRender]:
    """Return each cluster's objects, compiled and checked against the Kubernetes schemas."""
    from specc.check import CrdSchemas, check_objects
    from specc.compile import compile_fleet, fleet_crd_sources

    renders = compile_fleet(fleet, clusters)
    crds = CrdSchemas.from_documents(fleet_crd_sources(fleet))
    findings: list[Finding] = list(crds.problems)
    for render in renders:
        findings += check_objects(render.objects, render.kubernetes_version, crds)
    if findings:
        raise CheckError(sorted(set(findings)))
    return renders


def render_path(
    root: Path, clusters: list[str] | None = None
) -> tuple[ValidFleet, list[ClusterRender]]:
    """Return the validated fleet at ``root`` and the checked render of its clusters."""
    fleet = validate_path(root)
    return fleet, compile_checked(fleet, clusters)

"""The stages chained: path → loaded → validated → compiled → checked.

A fleet that fails any stage raises a FleetError listing every problem of that stage;
nothing after it runs, so a broken commit never reaches a cluster.
"""

from __future__ import annotations

from pathlib import Path

from specc.errors import CheckError, Finding, LoadError, Position, ValidationError
from specc.load import load_fleet, parse_text, read_text
from specc.objects import ClusterRender
from specc.spec.fleet import Fleet
from specc.validate import ValidFleet, typed, validate_fleet


def validate_path(root: Path) -> ValidFleet:
    """Return the validated fleet at ``root``; raise a FleetError listing every problem."""
    return validate_fleet(load_fleet(root))


def compile_checked(fleet: ValidFleet, clusters: list[str] | None = None) -> list[ClusterRender]:
    """Return each cluster's objects, compiled and checked against the Kubernetes schemas."""
    from specc.check import CrdSchemas, schema_findings
    from specc.check.podsecurity import check_pod_security
    from specc.check.quota import check_quota
    from specc.check.selectors import check_selectors
    from specc.compile import compile_fleet, fleet_crd_sources

    renders = compile_fleet(fleet, clusters)
    crds = CrdSchemas.from_documents(fleet_crd_sources(fleet))
    findings: list[Finding] = list(crds.problems)
    warnings: list[Finding] = []
    for render in renders:
        schema, passed = schema_findings(render.objects, render.kubernetes_version, crds)
        findings += schema
        # Only objects of the shape their schema says reach the checks that read fields.
        for f in [
            *check_pod_security(passed, render.kubernetes_version),
            *check_quota(passed),
            *check_selectors(passed, render.tenancy.shared if render.tenancy else frozenset()),
        ]:
            (warnings if f.severity == "warning" else findings).append(f)
    if findings:
        raise CheckError(sorted(set(findings)))
    # Said once however many clusters render the same pod.
    fleet.warnings[:] = sorted(set(fleet.warnings) | set(warnings))
    return renders


def render_path(
    root: Path, clusters: list[str] | None = None
) -> tuple[ValidFleet, list[ClusterRender]]:
    """Return the validated fleet at ``root`` and the checked render of its clusters."""
    fleet = validate_path(root)
    return fleet, compile_checked(fleet, clusters)


def validate_fleet_file(root: Path) -> Fleet:
    """Return fleet.yaml of the fleet at ``root``, validated alone (``specc status`` needs no more)."""
    file = root / "fleet.yaml"
    if not file.is_file():
        raise LoadError([Finding(Position("fleet.yaml"), "fleet.yaml is missing")])
    docs, findings = parse_text(read_text(root, file), "fleet.yaml")
    if findings:
        raise LoadError(findings)
    if not docs or not isinstance(docs[0].data, dict) or docs[0].kind != "Fleet":
        raise ValidationError([Finding(Position("fleet.yaml"), "fleet.yaml holds no Fleet")])
    model, problems = typed(Fleet, docs[0].data, docs[0].source)
    if model is None:
        raise ValidationError(problems)
    return model

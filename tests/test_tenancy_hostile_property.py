"""Property: any object beyond a team's grants, added anywhere a team can write, is refused.

The subset property (tests/test_tenancy_property.py) holds vacuously for a fleet that is
refused; this is its other half. For a generated fleet that validates (tests/fleetgen.py
plus drawn fleet.yaml grants), adding one hostile object — a cluster-scoped kind the team
is not granted (RBAC, admission, flow control, storage, scheduling), or a namespaced kind
aimed at a namespace that is not the team's (another team's, a reserved one, the
agent's, one not granted) — as a Manifests object, a cluster override's object, or a
CustomResource makes validate refuse, at the hostile file and for tenancy's reason.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from specc.errors import FleetError
from specc.pipeline import render_path
from tests import fleetgen

RBAC = "rbac.authorization.k8s.io/v1"
ROLE_REF = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
SUBJECTS = [{"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}]
ADMISSION = "admissionregistration.k8s.io/v1"
FLOW = "flowcontrol.apiserver.k8s.io/v1"
#: Cluster-scoped kinds a team could use to escalate or harm the cluster:
#: (apiVersion, kind, group-kind, body).
CLUSTER_KINDS: list[tuple[str, str, str, dict[str, Any]]] = [
    (RBAC, "ClusterRole", "ClusterRole.rbac.authorization.k8s.io", {"rules": []}),
    (
        RBAC,
        "ClusterRoleBinding",
        "ClusterRoleBinding.rbac.authorization.k8s.io",
        {"roleRef": ROLE_REF, "subjects": SUBJECTS},
    ),
    (
        ADMISSION,
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicy.admissionregistration.k8s.io",
        {"spec": {"validations": [{"expression": "false"}]}},
    ),
    (
        ADMISSION,
        "ValidatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicyBinding.admissionregistration.k8s.io",
        {"spec": {"policyName": "deny", "validationActions": ["Deny"]}},
    ),
    (
        ADMISSION,
        "MutatingWebhookConfiguration",
        "MutatingWebhookConfiguration.admissionregistration.k8s.io",
        {},
    ),
    (
        FLOW,
        "FlowSchema",
        "FlowSchema.flowcontrol.apiserver.k8s.io",
        {"spec": {"priorityLevelConfiguration": {"name": "x"}}},
    ),
    ("scheduling.k8s.io/v1", "PriorityClass", "PriorityClass.scheduling.k8s.io", {"value": 1}),
    ("storage.k8s.io/v1", "StorageClass", "StorageClass.storage.k8s.io", {"provisioner": "x"}),
    ("v1", "Namespace", "Namespace", {}),
    ("v1", "PersistentVolume", "PersistentVolume", {}),
    (
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "CustomResourceDefinition.apiextensions.k8s.io",
        {},
    ),
]
NAMESPACED_KINDS: list[tuple[str, str, dict[str, Any]]] = [
    ("v1", "ConfigMap", {"data": {"a": "b"}}),
    ("v1", "Secret", {"type": "Opaque"}),
    ("v1", "ServiceAccount", {}),
    (RBAC, "RoleBinding", {"roleRef": ROLE_REF, "subjects": SUBJECTS}),
    ("networking.k8s.io/v1", "NetworkPolicy", {"spec": {"podSelector": {}}}),
]
TEAMS = ["team-00", "team-01"]
#: Namespaces beyond a team's own: the other team's, reserved ones, the agent's, others.
FOREIGN = ["kube-system", "kube-public", "default", "specc-system", "monitoring", "ns-x"]
SHAREABLE = ["default", "monitoring", "ns-x"]
REASONS = (
    "is cluster-scoped and team",
    "is not granted to team",
    "belongs to another team",
    "is the specc agent's",
)

grants = st.lists(
    st.fixed_dictionaries(
        {
            "team": st.sampled_from(TEAMS),
            "kinds": st.lists(
                st.sampled_from([k[2] for k in CLUSTER_KINDS]), max_size=4, unique=True
            ),
            "namespaces": st.lists(st.sampled_from(SHAREABLE), max_size=2, unique=True),
        }
    ),
    max_size=2,
)


@st.composite
def hostile(draw: st.DrawFn) -> tuple[str, tuple[str, Any, str | None], str]:
    """Return (team, (scope, kind, namespace), where the object goes)."""
    team = draw(st.sampled_from(TEAMS))
    if draw(st.sampled_from(["cluster", "namespaced"])) == "cluster":
        where = draw(st.sampled_from(["manifests", "override", "customresource"]))
        # A CustomResource names group/version: core kinds cannot be one.
        kinds = [k for k in CLUSTER_KINDS if where != "customresource" or "/" in k[0]]
        kind = draw(st.sampled_from(kinds))
        return team, ("cluster", kind, None), where
    others = [t for t in TEAMS if t != team]
    namespace = draw(st.sampled_from([*others, *FOREIGN]))
    kind = draw(st.sampled_from(NAMESPACED_KINDS))
    return team, ("namespaced", kind, namespace), draw(st.sampled_from(["manifests", "override"]))


def _write(root: Path, rel: str, doc: dict[str, Any]) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


def _granted(grants: list[dict[str, Any]], team: str, what: tuple[Any, ...]) -> bool:
    scope, kind, namespace = what
    mine = [g for g in grants if g["team"] == team]
    if scope == "cluster":
        return any(kind[2] in g["kinds"] for g in mine)
    return namespace == team or any(namespace in g["namespaces"] for g in mine)


def _spec_only(body: dict[str, Any]) -> dict[str, Any]:
    """A CustomResource carries only ``spec`` (top-level fields like ``rules`` are not its)."""
    return {"spec": body["spec"]} if "spec" in body else {}


def _manifest(kind: tuple[Any, ...], namespace: str | None) -> dict[str, Any]:
    api_version, name, *_, body = kind
    meta: dict[str, Any] = {"name": "hostile"}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": name, "metadata": meta, **body}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    grants=grants,
    drawn=hostile(),
)
def test_an_object_beyond_the_teams_grants_is_refused_at_its_file(
    grants: list[dict[str, Any]], drawn: tuple[str, tuple[str, Any, str | None], str]
) -> None:
    team, what, where = drawn  # a CustomResource names no namespace: cluster kinds only
    assume(not _granted(grants, team, what))
    scope, kind, namespace = what
    tmp = Path(tempfile.mkdtemp())
    try:
        root = fleetgen.write_fleet(tmp / "fleet", 1)  # team-00; small: two renders a case
        other = {"apiVersion": fleetgen.API, "kind": "Team", "metadata": {"name": "team-01"}}
        _write(root, "teams/team-01.yaml", other)
        fleet_doc = yaml.safe_load((root / "fleet.yaml").read_text())
        fleet_doc["spec"]["grants"] = grants
        _write(root, "fleet.yaml", fleet_doc)
        render_path(root)  # the fleet is good before the addition

        rel = f"apps/{team}/hostile.yaml"
        if where == "customresource":
            api_version, name, _, body = kind
            doc: dict[str, Any] = {
                "apiVersion": fleetgen.API,
                "kind": "CustomResource",
                "metadata": {"name": "hostile", "team": team},
                "spec": {"apiVersion": api_version, "kind": name, **_spec_only(body)},
            }
        else:
            harmless = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fine"}}
            doc = {
                "apiVersion": fleetgen.API,
                "kind": "Manifests",
                "metadata": {"name": "hostile", "team": team},
                "spec": {"objects": [harmless]},
            }
            hostile = _manifest(kind, namespace)
            if where == "manifests":
                doc["spec"]["objects"].append(hostile)
            else:
                doc["overrides"] = {
                    "clusters": {fleetgen.CLUSTER: {"objects": [harmless, hostile]}}
                }
        _write(root, rel, doc)
        with pytest.raises(FleetError) as refused:
            render_path(root)
        at_file = [f for f in refused.value.findings if f.position.path == rel]
        assert at_file, [str(f) for f in refused.value.findings]
        why = [f.message for f in at_file]
        assert any(r in m for m in why for r in REASONS), why
        event(f"{scope} via {where}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

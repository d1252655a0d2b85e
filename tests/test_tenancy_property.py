"""Property: whatever a generated fleet holds, what a team's specs render stays within its grants.

For any fleet (tests/fleetgen.py's services plus, drawn by hypothesis, fleet.yaml grants,
Manifests and CustomResource apps of many kinds aimed at many namespaces, and cluster
overrides adding more), either the fleet is refused cleanly or every object an app of
team T renders has a (kind, namespace) the fleet grants T: a namespaced kind in T's
namespace or a namespace granted to T, a cluster-scoped kind granted to T.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from specc.errors import FleetError
from specc.pipeline import render_path
from specc.tenancy import Scopes
from tests import fleetgen

RBAC = "rbac.authorization.k8s.io/v1"
ROLE_REF = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
SUBJECTS = [{"kind": "Group", "name": "g", "apiGroup": "rbac.authorization.k8s.io"}]
#: (apiVersion, kind, group-kind, body fields): bodies the schema check accepts.
KINDS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("v1", "ConfigMap", "ConfigMap", {"data": {"a": "b"}}),
    ("v1", "ServiceAccount", "ServiceAccount", {}),
    (RBAC, "Role", "Role.rbac.authorization.k8s.io", {"rules": []}),
    (
        RBAC,
        "RoleBinding",
        "RoleBinding.rbac.authorization.k8s.io",
        {"roleRef": ROLE_REF, "subjects": SUBJECTS},
    ),
    (RBAC, "ClusterRole", "ClusterRole.rbac.authorization.k8s.io", {"rules": []}),
    (
        RBAC,
        "ClusterRoleBinding",
        "ClusterRoleBinding.rbac.authorization.k8s.io",
        {"roleRef": ROLE_REF, "subjects": SUBJECTS},
    ),
    ("v1", "Namespace", "Namespace", {}),
    ("scheduling.k8s.io/v1", "PriorityClass", "PriorityClass.scheduling.k8s.io", {"value": 1}),
    ("storage.k8s.io/v1", "StorageClass", "StorageClass.storage.k8s.io", {"provisioner": "x"}),
    ("node.k8s.io/v1", "RuntimeClass", "RuntimeClass.node.k8s.io", {"handler": "x"}),
]
TEAMS = ["team-00", "team-01"]
NAMESPACES = [
    None,
    "team-00",
    "team-01",
    "kube-system",
    "default",
    "specc-system",
    "monitoring",
    "ns-x",
]

objects = st.lists(
    st.tuples(st.sampled_from(KINDS), st.sampled_from(NAMESPACES), st.integers(0, 3)),
    max_size=3,
)
grants = st.lists(
    st.fixed_dictionaries(
        {
            "team": st.sampled_from(TEAMS),
            "kinds": st.lists(st.sampled_from([k[2] for k in KINDS]), max_size=8, unique=True),
            "namespaces": st.lists(
                st.sampled_from(["kube-system", "default", "monitoring"]), max_size=2, unique=True
            ),
        }
    ),
    max_size=3,
)


def _object(kind: tuple[str, str, str, dict[str, Any]], ns: str | None, i: int) -> dict[str, Any]:
    api_version, name, _, body = kind
    meta: dict[str, Any] = {"name": f"o-{name.lower()}-{i}"}
    if ns is not None:
        meta["namespace"] = ns
    return {"apiVersion": api_version, "kind": name, "metadata": meta, **body}


def _write(root: Path, rel: str, doc: dict[str, Any]) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 40),
    grants=grants,
    per_team=st.lists(st.tuples(objects, objects), min_size=2, max_size=2),
    custom=st.lists(
        st.tuples(st.sampled_from(TEAMS), st.sampled_from([k for k in KINDS if "/" in k[0]])),
        max_size=2,
    ),
)
def test_a_teams_objects_are_a_subset_of_what_the_fleet_grants_it(
    n: int, grants: list[dict[str, Any]], per_team: list[Any], custom: list[Any]
) -> None:
    tmp = Path(tempfile.mkdtemp())
    try:
        root = fleetgen.write_fleet(tmp / "fleet", max(n, 26))
        fleet_doc = yaml.safe_load((root / "fleet.yaml").read_text())
        fleet_doc["spec"]["grants"] = grants
        _write(root, "fleet.yaml", fleet_doc)
        for team, (base, override) in zip(TEAMS, per_team, strict=True):
            doc: dict[str, Any] = {
                "apiVersion": fleetgen.API,
                "kind": "Manifests",
                "metadata": {"name": "raw", "team": team},
                "spec": {"objects": [_object(*o) for o in base] or [_object(KINDS[0], None, 9)]},
            }
            if override:
                doc["overrides"] = {
                    "clusters": {fleetgen.CLUSTER: {"objects": [_object(*o) for o in override]}}
                }
            _write(root, f"apps/{team}/raw.yaml", doc)
        for i, (team, (api_version, kind, _, body)) in enumerate(custom):
            _write(
                root,
                f"apps/{team}/cr-{i}.yaml",
                {
                    "apiVersion": fleetgen.API,
                    "kind": "CustomResource",
                    "metadata": {"name": f"cr-{i}", "team": team},
                    "spec": {
                        "apiVersion": api_version,
                        "kind": kind,
                        **({"spec": body} if body else {}),
                    },
                },
            )
        try:
            (render,) = render_path(root)[1]
        except FleetError as exc:
            event("refused: " + exc.findings[0].message[:30])
            return
        event("rendered")
        allowed: dict[str, set[tuple[str, str | None]]] = {}
        scopes = Scopes(render.kubernetes_version)
        for team in {fleetgen.team_of(i) for i in range(max(n, 26))}:
            granted = [g for g in grants if g["team"] == team]
            spaces = {team} | {ns for g in granted for ns in g["namespaces"]}
            kinds = {k for g in granted for k in g["kinds"]}
            allowed[team] = {("*", ns) for ns in spaces} | {(k, None) for k in kinds}
        for obj in render.objects:
            kind_, _, rest = obj.origin.partition("/")
            if kind_ == "Team":
                continue
            team = rest.partition("/")[0]
            gk = obj.key.group_kind
            if scopes.scope(gk) is False:
                assert (gk, None) in allowed[team], (obj.origin, obj.ref)
                assert obj.namespace is None
            else:
                assert ("*", obj.namespace) in allowed[team], (obj.origin, obj.ref)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

"""Prune safety as properties: random inventories and commits, the same three promises.

1. Nothing outside the cluster target's ApplySet is ever deleted, nor anything someone
   else labelled as its member (the part-of label must be specc's, per managedFields).
2. A protected kind (PVC, PV, Namespace, CRD) is deleted only with ``specc.dev/prune: allow``.
3. One sync never prunes more than the budget's share of the inventory unless told to
   (and an empty commit never prunes at all).

First against the pure ``plan()`` (many examples), then through ``sync()`` against the
API server double (fewer), where the request log shows what was really deleted and the
parent must still list the group-kind of every member it keeps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.errors import Position
from specc.objects import PRUNE_ANNOTATION, ClusterRender, DesiredObject, ObjectKey
from specc.sync import PlanOptions, SyncOptions, plan, sync
from specc.sync.inventory import GROUP_KINDS, PART_OF, ApplySetParent, applyset_id
from specc.sync.plan import PROTECTED_KINDS, Observed
from specc.testing import ApiServer
from tests.reliability import connect, deleted_targets, inventory_problems, target_of

CLUSTER = "prop"
PARENT = ApplySetParent.for_cluster(CLUSTER)
OTHER = applyset_id("specc-other", "specc-system")

#: (apiVersion, kind, namespaced) of the kinds the random inventories hold.
KINDS = [
    ("v1", "ConfigMap", True),
    ("v1", "Service", True),
    ("apps/v1", "Deployment", True),
    ("v1", "PersistentVolumeClaim", True),
    ("v1", "PersistentVolume", False),
    ("v1", "Namespace", False),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", False),
]


@dataclass(frozen=True)
class LiveSpec:
    kind: int
    name: str
    #: "ours", "none" (no part-of label), "other" (another ApplySet) or "forged" (our
    #: part-of label, set by another manager).
    membership: str
    allow_prune: bool


live_specs = st.builds(
    LiveSpec,
    kind=st.integers(0, len(KINDS) - 1),
    name=st.sampled_from([f"o{i}" for i in range(12)]),
    membership=st.sampled_from(["ours", "ours", "ours", "none", "other", "forged"]),
    allow_prune=st.booleans(),
)

#: managedFields of an object whose part-of label specc applied, and of one someone else did.
MARKS = {
    manager: [
        {
            "manager": manager,
            "operation": "Apply",
            "fieldsV1": {"f:metadata": {"f:labels": {f"f:{PART_OF}": {}}}},
        }
    ]
    for manager in ("specc", "kubectl-label")
}


def body(kind: int, name: str, labels: dict[str, str], allow: bool = False) -> dict[str, Any]:
    api_version, k, namespaced = KINDS[kind]
    meta: dict[str, Any] = {"name": name, "labels": labels}
    if namespaced:
        meta["namespace"] = "team"
    if allow:
        meta["annotations"] = {PRUNE_ANNOTATION: "allow"}
    return {"apiVersion": api_version, "kind": k, "metadata": meta, "data": {"x": "1"}}


def labels_for(membership: str) -> dict[str, str]:
    return {
        "ours": {PART_OF: PARENT.id},
        "forged": {PART_OF: PARENT.id},
        "other": {PART_OF: OTHER},
        "none": {},
    }[membership]


@settings(max_examples=400, deadline=None)
@given(
    live=st.lists(live_specs, max_size=25),
    keep=st.lists(st.booleans(), min_size=25, max_size=25),
    new=st.lists(st.tuples(st.integers(0, len(KINDS) - 1), st.integers(20, 30)), max_size=5),
    budget=st.sampled_from([0.0, 0.1, 0.25, 0.5, 1.0]),
    allow_mass_prune=st.booleans(),
)
def test_plan_prunes_only_unprotected_members_within_the_budget(
    live: list[LiveSpec],
    keep: list[bool],
    new: list[tuple[int, int]],
    budget: float,
    allow_mass_prune: bool,
) -> None:
    inventory: dict[ObjectKey, dict[str, Any]] = {}
    for spec in live:
        b = body(spec.kind, spec.name, labels_for(spec.membership), spec.allow_prune)
        manager = "specc" if spec.membership == "ours" else "kubectl-label"
        b["metadata"]["managedFields"] = MARKS[manager]
        inventory.setdefault(ObjectKey.of(b), b)
    desired = [
        DesiredObject(body(spec.kind, spec.name, {PART_OF: PARENT.id}), Position("apps/a.yaml", 1))
        for spec, kept in zip(live, keep, strict=False)
        if kept
    ]
    desired += [
        DesiredObject(body(k, f"n{i}", {PART_OF: PARENT.id}), Position("apps/a.yaml", 1))
        for k, i in new
    ]
    desired = list({d.key: d for d in desired}.values())
    wanted = {d.key for d in desired}
    options = PlanOptions(prune_budget=budget, allow_mass_prune=allow_mass_prune)

    observed = Observed(parent=PARENT.body(list(inventory), {}))

    result = plan(CLUSTER, desired, inventory, options, observed)

    prunes = [e for e in result.entries if e.action == "prune"]
    members = [b for b in inventory.values() if b["metadata"]["managedFields"] == MARKS["specc"]]
    for e in prunes:
        assert e.key not in wanted
        assert e.live is not None
        assert e.live["metadata"]["labels"].get(PART_OF) == PARENT.id, f"{e.key} is not ours"
        assert e.live["metadata"]["managedFields"] == MARKS["specc"], f"{e.key} labelled by another"
        if e.key.group_kind in PROTECTED_KINDS:
            notes = e.live["metadata"].get("annotations") or {}
            assert notes.get(PRUNE_ANNOTATION) == "allow", f"{e.key} is protected"
    if not allow_mass_prune:
        assert len(prunes) <= budget * len(members)
    if not desired:
        assert prunes == []
    # Every declared object has exactly one apply-side entry.
    applied = [e.key for e in result.entries if e.action in ("create", "configure", "unchanged")]
    assert sorted(applied) == sorted(wanted)


# -- through sync() against the double -----------------------------------------------------

#: Kinds the double can hold without more set-up (CRDs and PVs left to the pure test).
SYNC_KINDS = [0, 1, 3, 5]


def _sync_body(kind: int, name: str, labels: dict[str, str], allow: bool = False) -> dict[str, Any]:
    b = body(kind, name, labels, allow)
    b.pop("data")
    k = b["kind"]
    if k == "ConfigMap":
        b["data"] = {"x": "1"}
    elif k == "Service":
        b["spec"] = {"ports": [{"port": 80, "protocol": "TCP"}]}
    elif k == "PersistentVolumeClaim":
        b["spec"] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
        }
    elif k == "Namespace":
        b["metadata"]["name"] = f"ns-{name}"
    return b


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    if os.environ.get("SPECC_TEST_KUBECONFIG"):
        pytest.skip("reads the double's request log")
    with ApiServer() as srv:
        yield srv


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    live=st.lists(
        st.builds(
            LiveSpec,
            kind=st.sampled_from(SYNC_KINDS),
            name=st.sampled_from([f"o{i}" for i in range(8)]),
            membership=st.sampled_from(["ours", "ours", "none", "other", "forged"]),
            allow_prune=st.booleans(),
        ),
        max_size=12,
    ),
    keep=st.lists(st.booleans(), min_size=12, max_size=12),
    budget=st.sampled_from([0.1, 0.25, 0.5]),
    allow_mass_prune=st.booleans(),
)
def test_sync_deletes_only_unprotected_members_within_the_budget(
    server: ApiServer,
    live: list[LiveSpec],
    keep: list[bool],
    budget: float,
    allow_mass_prune: bool,
) -> None:
    server.reset()
    cluster = connect(server)
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
        force=True,
        manager="setup",
    )
    created: dict[ObjectKey, dict[str, Any]] = {}
    specc_made: set[ObjectKey] = set()
    for spec in live:
        b = _sync_body(spec.kind, spec.name, labels_for(spec.membership), spec.allow_prune)
        if ObjectKey.of(b) not in created:
            created[ObjectKey.of(b)] = b
            if spec.membership == "ours":
                specc_made.add(ObjectKey.of(b))
            # Members were applied by specc before; others by someone else.
            cluster.apply(b, force=True, manager="specc" if spec.membership == "ours" else "other")
    # The parent an earlier sync left: it lists every kind its members have.
    kinds = sorted(
        {
            k.group_kind
            for k, b in created.items()
            if b["metadata"]["labels"].get(PART_OF) == PARENT.id
        }
    )
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": PARENT.namespace}},
        force=True,
    )
    parent_body = PARENT.body(list(created), {})
    parent_body["metadata"]["annotations"][GROUP_KINDS] = ",".join(kinds)
    cluster.apply(parent_body, force=True)

    desired = [
        DesiredObject(_sync_body(spec.kind, spec.name, {}), Position("apps/a.yaml", 1))
        for spec, kept in zip(live, keep, strict=False)
        if kept
    ]
    desired = list({d.key: d for d in desired}.values())
    # A render always declares its team's namespace.
    desired.append(
        DesiredObject(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
            Position("teams/team.yaml", 1),
        )
    )
    render = ClusterRender(CLUSTER, "1.33", desired)
    since = len(server.requests)
    result = sync(
        cluster,
        render,
        SyncOptions(plan=PlanOptions(prune_budget=budget, allow_mass_prune=allow_mass_prune)),
    )

    deleted = deleted_targets(server, since)
    wanted = {target_of(cluster, d) for d in desired}
    members = 0
    for key, b in created.items():
        t = target_of(cluster, b)
        ours = key in specc_made
        members += ours
        if t not in deleted:
            continue
        assert ours, f"{key} is not a member and was deleted"
        assert t not in wanted, f"{key} is declared and was deleted"
        if key.group_kind in PROTECTED_KINDS:
            assert (b["metadata"].get("annotations") or {}).get(PRUNE_ANNOTATION) == "allow"
    if not allow_mass_prune:
        assert len(deleted) <= budget * members
    if result.ok:
        assert inventory_problems(cluster, render) == []

"""The guards a sync applies before it writes, on the double and on a real cluster (``kube``).

Identity (the server is this fleet's cluster), ownership (objects of another owner are
not taken silently), discovery (kinds the cluster does not serve), prune provenance
(only what specc labelled, in the parent's namespaces) and a prune budget the commit
cannot raise for itself. Each test works in the ``kube`` fixture's fresh namespace,
which is also where its ApplySet parent lives, so tests never see each other's parents.
"""

from __future__ import annotations

from typing import Any

import pytest

from specc.errors import IdentityError, Position
from specc.objects import ClusterRender, DesiredObject, ObjectKey
from specc.sync import Cluster, ClusterOptions, PlanOptions, SyncOptions, plan_cluster, sync
from specc.sync.apply import list_parents, record_status
from specc.sync.inventory import (
    ADDITIONAL_NAMESPACES,
    CLUSTER_LABEL,
    FLEET_LABEL,
    PART_OF,
    ApplySetParent,
    applyset_id,
)
from specc.testing.pytest_plugin import KubeTarget

ORIGIN = "Manifests/team/app"


@pytest.fixture
def cluster(kube: KubeTarget) -> Cluster:
    return Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))


def configmap(ns: str, name: str, origin: str = ORIGIN, **data: str) -> DesiredObject:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data or {"k": "v"},
    }
    return DesiredObject(body, Position("apps/app.yaml", 3, 1), origin)


def render(
    kube: KubeTarget,
    objects: list[DesiredObject],
    cluster: str = "dev",
    fleet: str = "acme",
    adopt: set[str] | None = None,
) -> ClusterRender:
    return ClusterRender(cluster, "1.33", objects, fleet=fleet, adopt=adopt or set())


def options(kube: KubeTarget, **plan: Any) -> SyncOptions:
    return SyncOptions(plan=PlanOptions(**plan), parent_namespace=kube.namespace)


def parent_of(kube: KubeTarget, cluster: str = "dev", fleet: str = "acme") -> ApplySetParent:
    return ApplySetParent.for_cluster(cluster, fleet, kube.namespace)


def writes(kube: KubeTarget, client: Cluster) -> int:
    """Return the writes the server saw (the double's log) or the client made (real)."""
    if kube.server is not None:
        return kube.server.log.writes()
    return client.stats.writes + client.stats.requests["dry-run"]


def fresh(kube: KubeTarget) -> Cluster:
    if kube.server is not None:
        kube.server.log.clear()
    return Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))


def live(client: Cluster, ns: str, name: str) -> dict[str, Any]:
    found = client.get("v1", "ConfigMap", ns, name)
    assert found is not None
    return found


# -- identity ----------------------------------------------------------------------------


def test_another_cluster_of_the_fleet_on_the_server_is_refused_with_zero_writes(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    assert sync(cluster, render(kube, [configmap(ns, "a")]), options(kube)).ok
    client = fresh(kube)
    staging = render(kube, [configmap(ns, "a", x="staging")], cluster="staging")
    with pytest.raises(IdentityError) as err:
        sync(client, staging, options(kube))
    assert str(err.value).startswith(
        f"cluster staging of fleet acme: the server {client.server} holds cluster dev of "
        f"fleet acme (ConfigMap {ns}/specc-dev); refusing to write"
    )
    assert err.value.exit_code == 2
    assert writes(kube, client) == 0
    with pytest.raises(IdentityError):
        plan_cluster(client, staging, options(kube))
    with pytest.raises(IdentityError):
        record_status(client, parent_of(kube, "staging"), {"lastResult": "failed"})
    assert writes(kube, client) == 0
    assert live(client, ns, "a")["data"] == {"k": "v"}


def test_a_copy_of_the_fleet_under_another_name_is_refused(
    kube: KubeTarget, cluster: Cluster
) -> None:
    # Seen (issue 18): a stale copy of the fleet with the same cluster name pruned the
    # original's objects; the parent now records the fleet.
    ns = kube.namespace
    assert sync(cluster, render(kube, [configmap(ns, "a"), configmap(ns, "b")]), options(kube)).ok
    client = fresh(kube)
    copy = render(kube, [configmap(ns, "a")], fleet="acme-old")
    with pytest.raises(IdentityError, match="holds cluster dev of fleet acme "):
        sync(client, copy, options(kube))
    assert writes(kube, client) == 0 and client.get("v1", "ConfigMap", ns, "b") is not None


def test_a_parent_from_before_identities_is_taken_as_ours_and_gets_one(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    legacy = ApplySetParent("specc-dev", ns).body([ObjectKey("", "ConfigMap", ns, "a")], {})
    assert CLUSTER_LABEL not in legacy["metadata"]["labels"]
    cluster.apply(legacy, force=True)
    result = sync(cluster, render(kube, [configmap(ns, "a")]), options(kube))
    assert result.ok, result.to_dict()
    labels = live(cluster, ns, "specc-dev")["metadata"]["labels"]
    assert (labels[FLEET_LABEL], labels[CLUSTER_LABEL]) == ("acme", "dev")
    # A legacy parent of another cluster is another cluster.
    cluster.apply(ApplySetParent("specc-staging", ns).body([], {}), force=True)
    with pytest.raises(IdentityError, match="holds cluster staging of an unrecorded fleet"):
        sync(fresh(kube), render(kube, [configmap(ns, "a")]), options(kube))


def test_allow_cluster_mismatch_writes_and_warns(kube: KubeTarget, cluster: Cluster) -> None:
    ns = kube.namespace
    assert sync(cluster, render(kube, [configmap(ns, "a")]), options(kube)).ok
    moved = SyncOptions(parent_namespace=ns, allow_cluster_mismatch=True)
    result = sync(cluster, render(kube, [configmap(ns, "z")], cluster="staging"), moved)
    assert result.ok and result.counts()["created"] == 1
    assert "writing anyway (--allow-cluster-mismatch)" in result.plan.warnings[0]
    names = sorted(p["metadata"]["name"] for p in list_parents(cluster, ns))
    assert names == ["specc-dev", "specc-staging"]


# -- ownership -------------------------------------------------------------------------------


def owned(
    ns: str, name: str, labels: dict[str, str], notes: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
    if notes:
        meta["annotations"] = notes
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "theirs"}}


def arrange_owners(kube: KubeTarget, client: Cluster) -> dict[str, str]:
    """Create objects of three other owners and a free one; return name → resourceVersion."""
    ns = kube.namespace
    other_tool = applyset_id("other-tool", "kube-system")
    bodies = [
        owned(ns, "theirs-applyset", {PART_OF: other_tool}),
        owned(
            ns,
            "theirs-helm",
            {"app.kubernetes.io/managed-by": "Helm"},
            {"meta.helm.sh/release-name": "shop", "meta.helm.sh/release-namespace": ns},
        ),
        owned(
            ns,
            "theirs-specc",
            {PART_OF: applyset_id("specc-prod", ns), "app.kubernetes.io/managed-by": "specc"},
        ),
        owned(ns, "free", {"team": "x"}),
    ]
    for b in bodies:
        client.apply(b, force=True, manager="someone")
    return {
        b["metadata"]["name"]: live(client, ns, b["metadata"]["name"])["metadata"][
            "resourceVersion"
        ]
        for b in bodies
    }


NAMES = ("theirs-applyset", "theirs-helm", "theirs-specc", "free")


def test_objects_of_other_owners_are_refused_untouched_and_named(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    versions = arrange_owners(kube, cluster)
    desired = [configmap(ns, n, origin=f"Manifests/team/{n}") for n in NAMES]
    desired.append(configmap(ns, "new"))
    the_plan, _, _ = plan_cluster(cluster, render(kube, desired), options(kube))
    owners = {e.key.name: (e.action, e.owner, e.refusal) for e in the_plan.entries}
    assert owners["theirs-applyset"][:2] == (
        "adopt",
        f"ApplySet {applyset_id('other-tool', 'kube-system')}",
    )
    assert owners["theirs-helm"][:2] == ("adopt", f"Helm release {ns}/shop")
    assert owners["theirs-specc"][:2] == (
        "adopt",
        f"another specc ApplySet {applyset_id('specc-prod', ns)}",
    )
    assert owners["free"] == ("adopt", "", "")
    assert owners["new"] == ("create", "", "")
    for name in NAMES[:3]:
        assert owners[name][2].endswith(
            f"not taken without --adopt or adopt: true in Manifests/team/{name}"
        )
    assert not the_plan.in_sync and the_plan.counts()["refused"] == 3

    result = sync(cluster, render(kube, desired), options(kube))
    outcomes = {r.key.name: (r.outcome, r.message) for r in result.results}
    assert not result.ok
    assert {n for n, (o, _) in outcomes.items() if o == "refused"} == set(NAMES[:3])
    assert outcomes["theirs-helm"][1].startswith(f"owned by Helm release {ns}/shop")
    assert outcomes["free"] == ("configured", "adopted")
    assert outcomes["new"][0] == "created"
    for name in NAMES[:3]:
        after = live(cluster, ns, name)
        assert after["metadata"]["resourceVersion"] == versions[name], f"{name} was written"
        assert after["data"] == {"k": "theirs"}
    assert live(cluster, ns, "free")["metadata"]["labels"][PART_OF] == parent_of(kube).id
    # The status says what was refused.
    status = live(cluster, ns, "specc-dev")["data"]
    assert status["lastResult"] == "failed" and "theirs-helm" in status["lastError"]


def test_adopt_takes_them_all_and_then_costs_no_extra_request(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    arrange_owners(kube, cluster)
    desired = [configmap(ns, n) for n in NAMES]
    result = sync(cluster, render(kube, desired), options(kube, adopt=True))
    assert result.ok, result.to_dict()
    messages = {r.key.name: r.message for r in result.results}
    assert messages["theirs-helm"] == f"adopted from Helm release {ns}/shop"
    for name in NAMES:
        assert live(cluster, ns, name)["metadata"]["labels"][PART_OF] == parent_of(kube).id
    # Steady state: every object is a member, found by the LISTs; no GET per object.
    quiet = fresh(kube)
    again = sync(quiet, render(kube, desired), options(kube))
    assert again.ok and quiet.stats.requests["get"] == 0 and quiet.stats.writes == 0


def test_an_apps_adopt_true_takes_only_that_apps_objects(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    arrange_owners(kube, cluster)
    desired = [configmap(ns, n, origin=f"Manifests/team/{n}") for n in NAMES]
    result = sync(
        cluster, render(kube, desired, adopt={"Manifests/team/theirs-helm"}), options(kube)
    )
    outcomes = {r.key.name: r.outcome for r in result.results}
    assert outcomes == {
        "theirs-applyset": "refused",
        "theirs-helm": "configured",
        "theirs-specc": "refused",
        "free": "configured",
    }


def test_another_specc_cluster_is_named_when_its_parent_is_on_the_server(
    kube: KubeTarget, cluster: Cluster
) -> None:
    # Only during a migration (--allow-cluster-mismatch) do two clusters' parents meet.
    ns = kube.namespace
    assert sync(cluster, render(kube, [configmap(ns, "shared")], cluster="old"), options(kube)).ok
    moving = SyncOptions(parent_namespace=ns, allow_cluster_mismatch=True)
    result = sync(cluster, render(kube, [configmap(ns, "shared")]), moving)
    (refused,) = [r for r in result.results if r.outcome == "refused"]
    assert refused.message.startswith("owned by specc cluster old of fleet acme")
    migrate = SyncOptions(
        parent_namespace=ns, allow_cluster_mismatch=True, plan=PlanOptions(adopt=True)
    )
    assert sync(cluster, render(kube, [configmap(ns, "shared")]), migrate).ok


# -- discovery -------------------------------------------------------------------------------


def widget(ns: str) -> DesiredObject:
    body = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": ns},
        "spec": {"size": 1},
    }
    return DesiredObject(body, Position("apps/widget.yaml", 1, 1), "CustomResource/team/w")


def test_a_kind_the_cluster_does_not_serve_fails_the_plan_and_is_never_sent(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    desired = [configmap(ns, "a"), widget(ns)]
    the_plan, _, _ = plan_cluster(cluster, render(kube, desired), options(kube))
    (entry,) = the_plan.refused
    assert str(entry.key) == f"Widget/{ns}/w"
    assert entry.refusal == (
        "the cluster does not serve example.com/v1 Widget, "
        "and the commit has no CustomResourceDefinition for it"
    )
    assert not the_plan.in_sync
    client = fresh(kube)
    result = sync(client, render(kube, desired), options(kube))
    outcomes = {str(r.key): r.outcome for r in result.results}
    assert outcomes == {f"ConfigMap/{ns}/a": "created", f"Widget/{ns}/w": "refused"}
    assert not result.ok
    if kube.server is not None:
        assert not [r for r in kube.server.requests if "widgets" in r.path]


# -- prune provenance --------------------------------------------------------------------------


def test_an_object_someone_else_labelled_as_ours_is_never_pruned(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    keep = [configmap(ns, f"c{i}") for i in range(8)]
    assert sync(cluster, render(kube, keep), options(kube)).ok
    ours = parent_of(kube).id
    # kubectl label cm/intruder applyset.kubernetes.io/part-of=<our id>
    cluster.apply(owned(ns, "intruder", {PART_OF: ours}), force=True, manager="kubectl-label")
    result = sync(fresh(kube), render(kube, keep), options(kube))
    assert result.ok, result.to_dict()
    (skipped,) = [r for r in result.results if r.key.name == "intruder"]
    assert skipped.outcome == "skipped"
    assert skipped.message == f"labelled {PART_OF} by kubectl-label, not by specc: not pruned"
    assert cluster.get("v1", "ConfigMap", ns, "intruder") is not None


def test_a_member_outside_the_parents_namespaces_is_never_pruned(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    other = f"{ns}-x"
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}, force=True
    )
    try:
        keep = [configmap(ns, f"c{i}") for i in range(8)]
        assert sync(cluster, render(kube, keep), options(kube)).ok
        # Even with specc's own field manager, a namespace the parent does not list is not
        # the ApplySet's (KEP-3659: members live in the parent's namespaces).
        cluster.apply(owned(other, "elsewhere", {PART_OF: parent_of(kube).id}), force=True)
        notes = live(cluster, ns, "specc-dev")["metadata"].get("annotations") or {}
        assert other not in notes.get(ADDITIONAL_NAMESPACES, "")
        result = sync(fresh(kube), render(kube, keep), options(kube))
        (skipped,) = [r for r in result.results if r.key.name == "elsewhere"]
        assert skipped.outcome == "skipped" and f"namespace {other} is not among" in skipped.message
        assert cluster.get("v1", "ConfigMap", other, "elsewhere") is not None
    finally:
        cluster.delete(ObjectKey("", "Namespace", "", other), "v1")


# -- the prune budget ----------------------------------------------------------------------------


def test_a_commit_cannot_raise_the_prune_budget_for_its_own_sync(
    kube: KubeTarget, cluster: Cluster
) -> None:
    # Seen (issue 18): one commit set budget 1.0 and removed 90 of 100 objects; all pruned.
    ns = kube.namespace
    objects = [configmap(ns, f"c{i:02}") for i in range(20)]
    assert sync(cluster, render(kube, objects), options(kube)).ok
    assert live(cluster, ns, "specc-dev")["data"]["pruneBudget"] == "0.25"
    client = fresh(kube)
    hostile = sync(client, render(kube, objects[:2]), options(kube, prune_budget=1.0))
    assert not hostile.ok and "over the budget of 25%" in hostile.refused[0]
    assert writes(kube, client) == 0
    # The operator may allow more; the recorded budget of the last commit still binds.
    wider = sync(
        client, render(kube, objects[:2]), options(kube, prune_budget=1.0, operator_budget=1.0)
    )
    assert not wider.ok and "(the last applied commit's)" in wider.refused[0]
    # A commit that lowers the budget is obeyed at once.
    lowered = sync(client, render(kube, objects[:16]), options(kube, prune_budget=0.1))
    assert not lowered.ok and "over the budget of 10% (this commit's)" in lowered.refused[0]
    assert sync(client, render(kube, objects[:16]), options(kube, allow_mass_prune=True)).ok


def test_many_new_objects_in_an_existing_namespace_cost_one_list_not_a_get_each(
    kube: KubeTarget, cluster: Cluster
) -> None:
    ns = kube.namespace
    cluster.apply(
        owned(
            ns,
            "cm-07",
            {"app.kubernetes.io/managed-by": "Helm"},
            {"meta.helm.sh/release-name": "r"},
        ),
        force=True,
        manager="helm",
    )
    cluster.apply(owned(ns, "cm-11", {}), force=True, manager="someone")
    desired = [configmap(ns, f"cm-{i:02}") for i in range(30)]
    client = fresh(kube)
    result = sync(client, render(kube, desired), options(kube))
    outcomes = {r.key.name: r.outcome for r in result.results}
    assert outcomes.pop("cm-07") == "refused" and outcomes.pop("cm-11") == "configured"
    assert set(outcomes.values()) == {"created"}
    # The parents, the members, and the namespace's ConfigMaps: three LISTs, no GET.
    assert client.stats.requests["list"] == 3 and client.stats.requests["get"] == 0

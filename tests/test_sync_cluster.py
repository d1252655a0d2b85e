"""The sync round trip, on the double and on the real control plane (``kube`` fixture).

Everything here is counted by specc's own client, not the double's request log, so the
same assertions hold on both. The example fleet brings its own CRD and a custom resource
of it in the same commit. On a real cluster the test creates the example fleet's
namespaces and removes them afterwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.objects import ObjectKey
from specc.pipeline import render_path
from specc.report import plan_lines
from specc.sync import Cluster, ClusterOptions, PlanOptions, SyncOptions, plan_cluster, sync
from specc.testing.pytest_plugin import KubeTarget

CLUSTER = "dev"


@pytest.fixture
def target(kube: KubeTarget, fleet: Path) -> Iterator[KubeTarget]:
    # Only what a bare cluster serves: no operator CRDs besides the fleet's own.
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)
    yield kube
    if not kube.is_double:
        cluster = connect(kube)
        for ns in ("storefront", "payments", "platform", "specc-system"):
            cluster.delete(ObjectKey("", "Namespace", "", ns), "v1")


def connect(kube: KubeTarget) -> Cluster:
    return Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))


def test_sync_creates_resyncs_without_writes_heals_drift_and_prunes(
    target: KubeTarget, fleet: Path
) -> None:
    _, (render,) = render_path(fleet, [CLUSTER])
    first = sync(connect(target), render, SyncOptions(commit="c1"))
    assert first.ok, first.to_dict()
    assert first.counts()["created"] == len(render.objects)
    # The CRD and a resource of its kind, from one commit: the CRD's wave waits for it.
    etcd = connect(target).get(
        "etcd.database.coreos.com/v1beta2", "EtcdCluster", "payments", "session-store"
    )
    assert etcd is not None and etcd["spec"]["size"] == 1

    quiet = connect(target)
    again = sync(quiet, render, SyncOptions(commit="c1"))
    assert again.ok and quiet.stats.writes == 0 and quiet.stats.requests["dry-run"] == 0

    # Another manager changes a field specc owns: reported as drift naming it, then healed.
    other = connect(target)
    other.request(
        "patch",
        "PATCH",
        "/apis/apps/v1/namespaces/payments/statefulsets/ledger-db",
        [("fieldManager", "kubectl-scale")],
        {"spec": {"replicas": 5}},
        "application/merge-patch+json",
    )
    the_plan, _, _ = plan_cluster(connect(target), render)
    (drift,) = the_plan.drifted
    assert [(c.path, c.manager, c.live, c.desired) for c in drift.changes] == [
        ("spec.replicas", "kubectl-scale", 5, 1)
    ]
    assert sync(connect(target), render).counts()["configured"] == 1
    assert plan_cluster(connect(target), render)[0].in_sync

    # An app removed from the fleet: its objects are pruned, nothing else.
    (fleet / "apps/storefront/web.yaml").unlink()
    _, (smaller,) = render_path(fleet, [CLUSTER])
    pruned = sync(connect(target), smaller)
    assert pruned.ok, pruned.to_dict()
    gone = sorted(str(r.key) for r in pruned.results if r.outcome == "pruned")
    assert gone == sorted(
        str(o.key) for o in render.objects if o.origin == "Service/storefront/web"
    )
    assert connect(target).get("apps/v1", "StatefulSet", "payments", "ledger-db") is not None


def test_sync_keeps_bystanders_refuses_a_mass_prune_and_names_a_scale_write(
    target: KubeTarget, fleet: Path
) -> None:
    _, (render,) = render_path(fleet, [CLUSTER])
    assert sync(connect(target), render, SyncOptions(commit="c1")).ok
    # A bystander in a namespace specc manages, and one dressed like a member of another set.
    other = connect(target)
    for name, labels in (
        ("bystander", {}),
        ("other-set", {"applyset.kubernetes.io/part-of": "applyset-other-v1"}),
    ):
        other.request(
            "create",
            "POST",
            "/api/v1/namespaces/storefront/configmaps",
            [("fieldManager", "someone-else")],
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}},
        )

    # `kubectl scale` writes through /scale: kube-apiserver records the subresource, no time.
    other.request(
        "patch",
        "PATCH",
        "/apis/apps/v1/namespaces/payments/statefulsets/ledger-db/scale",
        [("fieldManager", "kubectl")],
        {"spec": {"replicas": 4}},
        "application/merge-patch+json",
    )
    the_plan, _, _ = plan_cluster(connect(target), render)
    (drift,) = the_plan.drifted
    (change,) = drift.changes
    assert (change.path, change.manager, change.subresource, change.time) == (
        "spec.replicas",
        "kubectl",
        "scale",
        "",
    )
    assert any("[drift: set by kubectl via /scale]" in line for line in plan_lines(the_plan))
    assert sync(connect(target), render).ok

    # Removing two teams would prune most of the inventory: refused, nothing deleted.
    for team in ("storefront", "payments"):
        (fleet / "teams" / f"{team}.yaml").unlink()
        shutil.rmtree(fleet / "apps" / team)
    _, (smaller,) = render_path(fleet, [CLUSTER])
    quiet = connect(target)
    refused = sync(quiet, smaller)
    assert not refused.ok and "over the budget" in refused.refused[0]
    assert quiet.stats.writes == 0
    assert connect(target).get("apps/v1", "Deployment", "storefront", "web") is not None

    # Allowed explicitly, it prunes what specc made and nothing else.
    allowed = sync(connect(target), smaller, SyncOptions(plan=PlanOptions(allow_mass_prune=True)))
    assert allowed.ok, allowed.to_dict()
    pruned = {str(r.key) for r in allowed.results if r.outcome == "pruned"}
    assert "Deployment.apps/storefront/web" in pruned or any("web" in p for p in pruned)
    after = connect(target)
    for name in ("bystander", "other-set"):
        assert after.get("v1", "ConfigMap", "storefront", name) is not None, name

"""The sync round trip that also runs against a real cluster (``SPECC_TEST_KUBECONFIG``).

Everything here is counted by specc's own client, not the double's request log, so the
same assertions hold on both. On a real cluster the test creates the example fleet's
namespaces and removes them afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.objects import ObjectKey
from specc.pipeline import render_path
from specc.sync import Cluster, ClusterOptions, SyncOptions, plan_cluster, sync
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

"""Stateful change rules: what the API server will not change in place is said before a
sync (diff and plan: ``needs recreate``), and volumes never shrink (refused)."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.changerules import forbidden_fields, storage_changes
from specc.diff import diff_renders
from specc.pipeline import render_path
from specc.report import plan_lines
from specc.sync import Cluster, ClusterOptions, SyncOptions, plan_cluster, sync
from specc.testing.pytest_plugin import KubeTarget

LEDGER = "apps/payments/ledger-db.yaml"


@pytest.mark.parametrize(
    ("kind", "paths", "expected"),
    [
        ("StatefulSet.apps", ["spec.replicas", "spec.template.spec.containers[name=x].image"], []),
        (
            "StatefulSet.apps",
            ["spec.volumeClaimTemplates[name=data].spec.resources.requests.storage"],
            ["spec.volumeClaimTemplates"],
        ),
        (
            "StatefulSet.apps",
            ["spec.serviceName", "spec.podManagementPolicy", "spec.selector.matchLabels"],
            ["spec.podManagementPolicy", "spec.selector", "spec.serviceName"],
        ),
        (
            "StatefulSet.apps",
            [
                "spec.updateStrategy.rollingUpdate.partition",
                "spec.minReadySeconds",
                "spec.persistentVolumeClaimRetentionPolicy.whenScaled",
            ],
            [],
        ),
        ("Deployment.apps", ['spec.selector.matchLabels["app"]'], ["spec.selector"]),
        ("Deployment.apps", ["spec.replicas", "spec.template.metadata.labels"], []),
        ("Service", ["spec.selector"], []),
    ],
)
def test_which_changes_need_a_recreate(kind: str, paths: list[str], expected: list[str]) -> None:
    assert forbidden_fields(kind, paths) == expected


def _sts(size: str) -> dict[str, object]:
    claim = {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": size}}}}
    return {"spec": {"volumeClaimTemplates": [claim]}}


def test_storage_changes_compare_quantities_not_text() -> None:
    assert storage_changes(_sts("50Gi"), _sts("50Gi")) == []
    (up,) = storage_changes(_sts("50Gi"), _sts("100Gi"))
    assert up.increase and not up.decrease
    (down,) = storage_changes(_sts("50Gi"), _sts("20Gi"))
    assert down.decrease
    assert storage_changes(_sts("1Gi"), _sts("1024Mi")) == []


def _edit(fleet: Path, old: str, new: str) -> None:
    path = fleet / LEDGER
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_diff_marks_a_claim_template_change_as_needs_recreate_and_a_decrease_as_refused(
    fleet: Path,
) -> None:
    """Seen: 50Gi → 20Gi showed as a plain field change in diff."""
    _, base = render_path(fleet, ["prod-eu"])
    _edit(fleet, "    size: 50Gi", "    size: 20Gi")
    _, head = render_path(fleet, ["prod-eu"])
    (cluster,) = diff_renders(base, head).clusters
    reasons = sorted((w.reason, w.subject) for w in cluster.warnings)
    assert reasons == [
        ("needs-recreate", "StatefulSet/payments/ledger-db"),
        ("storage-decrease", "StatefulSet/payments/ledger-db"),
    ]
    decrease = next(w for w in cluster.warnings if w.reason == "storage-decrease")
    assert "from 50Gi to 20Gi" in decrease.message and "never shrinks" in decrease.message
    _edit(fleet, "    size: 20Gi", "    size: 100Gi")
    _, head = render_path(fleet, ["prod-eu"])
    (cluster,) = diff_renders(base, head).clusters
    (w,) = cluster.warnings
    assert w.reason == "needs-recreate"
    assert "spec.volumeClaimTemplates cannot change in place" in w.message


def connect(kube: KubeTarget) -> Cluster:
    return Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))


@pytest.fixture
def target(kube: KubeTarget, fleet: Path) -> KubeTarget:
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)
    return kube


def test_plan_marks_needs_recreate_and_refuses_a_storage_decrease(
    target: KubeTarget, fleet: Path
) -> None:
    _, (render,) = render_path(fleet, ["dev"])
    assert sync(connect(target), render, SyncOptions(commit="c1")).ok
    _edit(fleet, "storage: {size: 5Gi}", "storage: {size: 10Gi}")
    _, (bigger,) = render_path(fleet, ["dev"])
    the_plan, _, _ = plan_cluster(connect(target), bigger)
    (entry,) = [e for e in the_plan.entries if e.action == "configure"]
    assert str(entry.key) == "StatefulSet/payments/ledger-db"
    assert entry.reason == "needs recreate: spec.volumeClaimTemplates"
    assert not entry.refusal
    assert any("StatefulSet/payments/ledger-db: needs recreate" in w for w in the_plan.warnings)
    assert any(
        "(needs recreate: spec.volumeClaimTemplates)" in line for line in plan_lines(the_plan)
    )

    _edit(fleet, "storage: {size: 10Gi}", "storage: {size: 1Gi}")
    _, (smaller,) = render_path(fleet, ["dev"])
    the_plan, _, _ = plan_cluster(connect(target), smaller)
    (entry,) = [e for e in the_plan.entries if e.action == "configure"]
    assert "from 5Gi to 1Gi" in entry.refusal
    result = sync(connect(target), smaller)
    assert not result.ok
    live = connect(target).get("apps/v1", "StatefulSet", "payments", "ledger-db")
    assert live is not None
    assert (
        live["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "5Gi"
    )

"""Stateful change rules: what the API server will not change in place is said before a
sync (diff and plan: ``needs recreate``), and volumes never shrink (refused)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

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


def _storage_class(cluster: Cluster, expandable: bool) -> None:
    cluster.request(
        "create",
        "POST",
        "/apis/storage.k8s.io/v1/storageclasses",
        body={
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "fast-ssd"},
            "provisioner": "kubernetes.io/no-provisioner",
            "allowVolumeExpansion": expandable,
            "volumeBindingMode": "Immediate",
        },
    )


def _bound_claim(target: KubeTarget, cluster: Cluster, name: str) -> dict[str, Any]:
    """Return member 0's claim once bound: on the real tier the StatefulSet controller
    makes it and the volume binder binds it to a volume made for it; on the double the
    test does what those controllers do."""
    path = f"/api/v1/namespaces/payments/persistentvolumeclaims/{name}"
    if target.is_double:
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "payments"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "5Gi"}},
                "storageClassName": "fast-ssd",
            },
        }
        cluster.request("create", "POST", "/api/v1/namespaces/payments/persistentvolumeclaims", body=claim)  # fmt: skip
        status = {"status": {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"]}}  # fmt: skip
        cluster.request("patch", "PATCH", f"{path}/status", body=status, content_type="application/merge-patch+json")  # fmt: skip
    else:
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{target.namespace}-data"},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "fast-ssd",
                "hostPath": {"path": "/tmp/specc-test-data"},
                "claimRef": {"namespace": "payments", "name": name},
                "persistentVolumeReclaimPolicy": "Retain",
            },
        }
        cluster.request("create", "POST", "/api/v1/persistentvolumes", body=volume)
    deadline = time.monotonic() + 60
    while True:
        found = cluster.get("v1", "PersistentVolumeClaim", "payments", name)
        if found is not None and (found.get("status") or {}).get("phase") == "Bound":
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def _result(result: Any, ref: str) -> Any:
    (r,) = [r for r in result.results if str(r.key) == ref]
    return r


def test_a_storage_increase_recreates_the_statefulset_keeping_pods_and_expands_the_claims(
    target: KubeTarget, fleet: Path
) -> None:
    """Seen: the double accepted a volumeClaimTemplates change that kube-apiserver refuses
    (422 Forbidden), and sync recreated objects only when the error said "immutable"."""
    _storage_class(connect(target), expandable=True)
    _, (render,) = render_path(fleet, ["dev"])
    assert sync(connect(target), render, SyncOptions(commit="c1")).ok
    claim = _bound_claim(target, connect(target), "data-ledger-db-0")
    before = connect(target).get("apps/v1", "StatefulSet", "payments", "ledger-db")
    assert before is not None
    pod = connect(target).get("v1", "Pod", "payments", "ledger-db-0")  # the real tier's

    _edit(fleet, "storage: {size: 5Gi}", "storage: {size: 10Gi}")
    _, (bigger,) = render_path(fleet, ["dev"])
    refused = _result(sync(connect(target), bigger), "StatefulSet/payments/ledger-db")
    assert refused.outcome == "failed"
    assert refused.message.startswith(
        "spec.volumeClaimTemplates cannot change in place (the API server: FieldValueForbidden at spec)"
    ), refused.message
    assert "allowRecreate: true" in refused.message

    _edit(fleet, "  podManagementPolicy: OrderedReady\n", "  podManagementPolicy: OrderedReady\n  allowRecreate: true\n")  # fmt: skip
    _, (opted,) = render_path(fleet, ["dev"])
    result = sync(connect(target), opted)
    assert result.ok, result.to_dict()
    done = _result(result, "StatefulSet/payments/ledger-db")
    assert done.outcome == "configured"
    assert done.message == (
        "re-created (orphan propagation): spec.volumeClaimTemplates changed; "
        "claim data-ledger-db-0 expanded to 10Gi"
    )
    after = connect(target).get("apps/v1", "StatefulSet", "payments", "ledger-db")
    assert after is not None and after["metadata"]["uid"] != before["metadata"]["uid"]
    assert after["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"  # fmt: skip
    expanded = connect(target).get("v1", "PersistentVolumeClaim", "payments", "data-ledger-db-0")
    assert expanded is not None
    assert expanded["metadata"]["uid"] == claim["metadata"]["uid"]
    assert expanded["spec"]["resources"]["requests"]["storage"] == "10Gi"
    if pod is not None:  # orphaned, not deleted
        kept = connect(target).get("v1", "Pod", "payments", "ledger-db-0")
        assert kept is not None and kept["metadata"]["uid"] == pod["metadata"]["uid"]
    assert plan_cluster(connect(target), opted)[0].in_sync


def test_claims_of_a_class_without_expansion_are_named_and_left(
    target: KubeTarget, fleet: Path
) -> None:
    _storage_class(connect(target), expandable=False)
    _edit(fleet, "  podManagementPolicy: OrderedReady\n", "  podManagementPolicy: OrderedReady\n  allowRecreate: true\n")  # fmt: skip
    _, (render,) = render_path(fleet, ["dev"])
    assert sync(connect(target), render, SyncOptions(commit="c1")).ok
    _bound_claim(target, connect(target), "data-ledger-db-0")
    _edit(fleet, "storage: {size: 5Gi}", "storage: {size: 10Gi}")
    _, (bigger,) = render_path(fleet, ["dev"])
    done = _result(sync(connect(target), bigger), "StatefulSet/payments/ledger-db")
    assert done.outcome == "configured"
    assert done.message.endswith(
        "claim data-ledger-db-0 left at its size: StorageClass fast-ssd does not allow expansion"
    )
    left = connect(target).get("v1", "PersistentVolumeClaim", "payments", "data-ledger-db-0")
    assert left is not None and left["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_a_claim_already_larger_than_the_new_template_is_not_shrunk(
    target: KubeTarget, fleet: Path
) -> None:
    """Seen: a re-creation wrote the template's new size to every claim, so a claim an
    operator had expanded beyond it (5Gi -> 20Gi, template 5Gi -> 10Gi) was cut to 10Gi."""
    cluster = connect(target)
    _storage_class(cluster, expandable=True)
    _edit(fleet, "  podManagementPolicy: OrderedReady\n", "  podManagementPolicy: OrderedReady\n  allowRecreate: true\n")  # fmt: skip
    _, (render,) = render_path(fleet, ["dev"])
    assert sync(cluster, render, SyncOptions(commit="c1")).ok
    _bound_claim(target, cluster, "data-ledger-db-0")
    path = "/api/v1/namespaces/payments/persistentvolumeclaims/data-ledger-db-0"
    grow = {"spec": {"resources": {"requests": {"storage": "20Gi"}}}}
    cluster.request("patch", "PATCH", path, body=grow, content_type="application/merge-patch+json")  # fmt: skip
    _edit(fleet, "storage: {size: 5Gi}", "storage: {size: 10Gi}")
    _, (bigger,) = render_path(fleet, ["dev"])
    done = _result(sync(connect(target), bigger), "StatefulSet/payments/ledger-db")
    assert done.outcome == "configured", done.message
    assert done.message.endswith("claim data-ledger-db-0 left at 20Gi: already 10Gi or more")
    kept = connect(target).get("v1", "PersistentVolumeClaim", "payments", "data-ledger-db-0")
    assert kept is not None and kept["spec"]["resources"]["requests"]["storage"] == "20Gi"


@pytest.mark.double_only("refuses the claims' LIST with an injected 403")
def test_a_claim_list_refused_after_the_recreate_is_named_not_raised(
    target: KubeTarget, fleet: Path
) -> None:
    """Seen: a 403 listing the claims (RBAC without list on persistentvolumeclaims) left
    expand_claims as an ApiError: the sync ended there, its status unwritten, after the
    StatefulSet had been re-created."""
    assert target.server is not None
    cluster = connect(target)
    _storage_class(cluster, expandable=True)
    _edit(fleet, "  podManagementPolicy: OrderedReady\n", "  podManagementPolicy: OrderedReady\n  allowRecreate: true\n")  # fmt: skip
    _, (render,) = render_path(fleet, ["dev"])
    assert sync(cluster, render, SyncOptions(commit="c1")).ok
    _bound_claim(target, cluster, "data-ledger-db-0")
    target.server.faults.add(
        "/api/v1/namespaces/payments/persistentvolumeclaims", method="GET", status=403
    )
    _edit(fleet, "storage: {size: 5Gi}", "storage: {size: 10Gi}")
    _, (bigger,) = render_path(fleet, ["dev"])
    result = sync(connect(target), bigger, SyncOptions(commit="c2"))
    done = _result(result, "StatefulSet/payments/ledger-db")
    assert done.outcome == "failed"
    assert "re-created (orphan propagation)" in done.message
    assert "claims not expanded: " in done.message and "403" in done.message
    target.server.faults.clear()
    left = connect(target).get("v1", "PersistentVolumeClaim", "payments", "data-ledger-db-0")
    assert left is not None and left["spec"]["resources"]["requests"]["storage"] == "5Gi"


def test_an_invalid_value_in_a_field_changed_in_place_never_deletes_the_object(
    target: KubeTarget, fleet: Path
) -> None:
    """Seen: any FieldValueInvalid at a changed field counted as "cannot change in place",
    so an opted-in StatefulSet whose new replicas the server rejects as invalid (a render
    that reached the sync another way) was deleted, and its re-creation refused."""
    import copy
    import dataclasses

    cluster = connect(target)
    _edit(fleet, "  podManagementPolicy: OrderedReady\n", "  podManagementPolicy: OrderedReady\n  allowRecreate: true\n")  # fmt: skip
    _, (render,) = render_path(fleet, ["dev"])
    assert sync(cluster, render, SyncOptions(commit="c1")).ok
    before = cluster.get("apps/v1", "StatefulSet", "payments", "ledger-db")
    assert before is not None
    objects = []
    for obj in render.objects:
        if str(obj.key) == "StatefulSet/payments/ledger-db":
            body = copy.deepcopy(obj.body)
            body["spec"]["replicas"] = -1
            obj = dataclasses.replace(obj, body=body)
        objects.append(obj)
    broken = dataclasses.replace(render, objects=objects)
    done = _result(sync(connect(target), broken), "StatefulSet/payments/ledger-db")
    assert done.outcome == "failed"
    assert "greater than or equal to 0" in done.message, done.message
    after = connect(target).get("apps/v1", "StatefulSet", "payments", "ledger-db")
    assert after is not None and after["metadata"]["uid"] == before["metadata"]["uid"]


def _claim(cluster: Cluster, ns: str, name: str, sc: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "5Gi"}},
            "storageClassName": sc,
        },
    }
    cluster.request("create", "POST", f"/api/v1/namespaces/{ns}/persistentvolumeclaims", body=body)


def _bind(target: KubeTarget, cluster: Cluster, ns: str, name: str, sc: str) -> None:
    if target.is_double:  # what the volume binder does on the real tier
        status = {"status": {"phase": "Bound", "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"]}}  # fmt: skip
        path = f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}/status"
        cluster.request("patch", "PATCH", path, body=status, content_type="application/merge-patch+json")  # fmt: skip
    else:
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{ns}-{name}"},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": sc,
                "hostPath": {"path": "/tmp/specc-test-data"},
                "claimRef": {"namespace": ns, "name": name},
            },
        }
        cluster.request("create", "POST", "/api/v1/persistentvolumes", body=volume)
    deadline = time.monotonic() + 60
    while (cluster.get("v1", "PersistentVolumeClaim", ns, name) or {}).get("status", {}).get("phase") != "Bound":  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_claim_grows_only_when_bound_and_its_class_allows_and_never_below_capacity(
    kube: KubeTarget,
) -> None:
    from specc.sync.cluster import ApiError

    cluster = connect(kube)
    ns = kube.namespace
    for name, expandable in (("grows", True), ("fixed", False)):
        sc = f"{ns}-{name}"
        cluster.request(
            "create",
            "POST",
            "/apis/storage.k8s.io/v1/storageclasses",
            body={
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": sc},
                "provisioner": "kubernetes.io/no-provisioner",
                "allowVolumeExpansion": expandable,
            },
        )
        _claim(cluster, ns, name, sc)

    def resize(name: str, size: str) -> ApiError | None:
        try:
            cluster.request(
                "patch",
                "PATCH",
                f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}",
                body={"spec": {"resources": {"requests": {"storage": size}}}},
                content_type="application/merge-patch+json",
            )
        except ApiError as exc:
            return exc
        return None

    pending = resize("grows", "10Gi")
    assert pending is not None and pending.status == 422
    assert [(c["reason"], c["field"]) for c in pending.causes] == [("FieldValueForbidden", "spec")]
    assert "spec is immutable after creation except resources.requests" in str(pending)
    for name in ("grows", "fixed"):
        _bind(kube, cluster, ns, name, f"{ns}-{name}")
    refused = resize("fixed", "10Gi")
    assert refused is not None and refused.status == 403
    assert "the storageclass that provisions the pvc must support resize" in str(refused)
    assert resize("grows", "10Gi") is None
    shrink = resize("grows", "2Gi")
    assert shrink is not None and shrink.status == 422
    assert [(c["reason"], c["field"]) for c in shrink.causes] == [
        ("FieldValueForbidden", "spec.resources.requests.storage")
    ]
    assert resize("grows", "7Gi") is None  # below the request, not below status.capacity


def test_validate_with_a_base_refuses_a_storage_decrease_at_its_line(tmp_path: Path) -> None:
    """Done when: 50Gi → 20Gi is refused at validate with file:line (given the base the
    change is made from: validate alone sees one revision)."""
    import shutil

    from click.testing import CliRunner

    from specc.cli import cli
    from tests.test_diff_git import FLEET, commit, git

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    shutil.copytree(FLEET, repo / "fleet")
    commit(repo, "fleet")
    fleet = repo / "fleet"
    _edit(fleet, "    size: 50Gi", "    size: 20Gi")
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(fleet), "--base", "main"])
    assert result.exit_code == 1, result.output
    line = next(i for i, t in enumerate((fleet / LEDGER).read_text().splitlines(), 1) if "size: 20Gi" in t)  # fmt: skip
    assert (
        f"{LEDGER}:{line}:11: error: StatefulSet/payments/ledger-db: storage of claim template "
        "'data' goes down from 50Gi to 20Gi: a PersistentVolumeClaim never shrinks"
    ) in result.output
    # Without the base there is nothing to compare with; an increase is no error either.
    assert runner.invoke(cli, ["validate", str(fleet)]).exit_code == 0
    _edit(fleet, "    size: 20Gi", "    size: 100Gi")
    assert runner.invoke(cli, ["validate", str(fleet), "--base", "main"]).exit_code == 0

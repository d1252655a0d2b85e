"""Sync against the API server double, over HTTP, with the real kubernetes client."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from specc.cli import cli
from specc.objects import ClusterRender, ObjectKey
from specc.pipeline import render_path
from specc.sync import Cluster, ClusterOptions, PlanOptions, SyncOptions, plan_cluster, sync
from specc.sync.apply import read_status
from specc.sync.inventory import PART_OF, ApplySetParent
from specc.testing import ApiServer

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = "dev"
# These tests read the double's request log and inject faults.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SPECC_TEST_KUBECONFIG")), reason="needs the double"
)


@pytest.fixture
def fleet(fleet: Path) -> Path:
    # The double serves no prometheus-operator CRDs unless the fleet installs them.
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)
    return fleet


def connect(server: ApiServer) -> Cluster:
    # No sleeping between retries: the double answers at once.
    return Cluster(
        server.api_client(), ClusterOptions(backoff=0.001, max_backoff=0.01), sleep=lambda _: None
    )


def render_of(fleet: Path, cluster: str = CLUSTER) -> ClusterRender:
    _, (render,) = render_path(fleet, [cluster])
    return render


def live(server: ApiServer, path: str) -> dict[str, Any]:
    client = server.api_client()
    status, data, _ = Cluster(client)._send("GET", path, [], {"Accept": "application/json"}, None)
    assert status == 200, data
    return dict(json.loads(data))


def writes(server: ApiServer) -> int:
    return server.log.writes()


def test_first_sync_creates_everything_and_resync_writes_nothing(
    api: ApiServer, fleet: Path
) -> None:
    render = render_of(fleet)
    result = sync(connect(api), render)
    assert result.ok, result.to_dict()
    assert result.counts()["created"] == len(render.objects)
    # The CRD and its custom resource were applied in one sync.
    assert live(
        api, "/apis/etcd.database.coreos.com/v1beta2/namespaces/payments/etcdclusters/session-store"
    )

    api.log.clear()
    cluster = connect(api)
    again = sync(cluster, render)
    assert again.ok and again.counts()["unchanged"] == len(render.objects)
    assert writes(api) == 0
    group_kinds = {o.key.group_kind for o in render.objects}
    # One LIST per group-kind, one of the specc parents (the identity guard), no GET.
    assert cluster.stats.requests["list"] == len(group_kinds) + 1
    assert cluster.stats.requests["get"] == 0
    assert cluster.stats.requests["apply"] == 0 and cluster.stats.requests["dry-run"] == 0


def test_members_carry_the_applyset_label_and_parent_records_the_commit(
    api: ApiServer, fleet: Path
) -> None:
    render = render_of(fleet)
    assert sync(connect(api), render, SyncOptions(commit="abc123")).ok
    parent = ApplySetParent.for_cluster(CLUSTER)
    cm = live(api, f"/api/v1/namespaces/{parent.namespace}/configmaps/{parent.name}")
    assert cm["metadata"]["labels"]["applyset.kubernetes.io/id"] == parent.id
    kinds = cm["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"].split(",")
    assert "Deployment.apps" in kinds and "EtcdCluster.etcd.database.coreos.com" in kinds
    assert cm["data"]["lastAppliedCommit"] == "abc123" and cm["data"]["objects"] == str(
        len(render.objects)
    )
    assert cm["data"]["lastCounts"] == f"created={len(render.objects)}"
    deploy = live(api, "/apis/apps/v1/namespaces/storefront/deployments/web")
    assert deploy["metadata"]["labels"][PART_OF] == parent.id


def test_drift_by_another_manager_is_reported_with_its_name_and_healed(
    api: ApiServer, fleet: Path
) -> None:
    render = render_of(fleet)
    cluster = connect(api)
    assert sync(cluster, render).ok
    # What `kubectl set image` sends: a strategic merge patch keyed by container name.
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "evil:1"}]}}}}
    status, body, _ = cluster._send(
        "PATCH",
        "/apis/apps/v1/namespaces/storefront/deployments/web",
        [("fieldManager", "kubectl-patch")],
        {"Content-Type": "application/strategic-merge-patch+json", "Accept": "application/json"},
        patch,
    )
    assert status == 200, body

    the_plan, _, _ = plan_cluster(cluster, render)
    (entry,) = the_plan.drifted
    assert entry.key == ObjectKey("apps", "Deployment", "storefront", "web")
    (change,) = entry.changes
    assert change.manager == "kubectl-patch" and change.live == "evil:1"
    assert change.desired == "ghcr.io/acme/storefront-web:2.14.1"

    healed = sync(cluster, render)
    assert healed.ok and healed.counts()["configured"] == 1
    (taken,) = [r for r in healed.results if r.outcome == "configured"]
    assert ("kubectl-patch" in m for _, m in taken.taken)
    image = live(api, "/apis/apps/v1/namespaces/storefront/deployments/web")["spec"]["template"][
        "spec"
    ]["containers"][0]["image"]
    assert image == "ghcr.io/acme/storefront-web:2.14.1"
    assert plan_cluster(cluster, render)[0].in_sync


def test_no_force_turns_a_conflict_into_an_error(api: ApiServer, fleet: Path) -> None:
    render = render_of(fleet)
    cluster = connect(api)
    assert sync(cluster, render).ok
    cluster._send(
        "PATCH",
        "/apis/apps/v1/namespaces/payments/statefulsets/ledger-db",
        [("fieldManager", "kubectl-scale")],
        {"Content-Type": "application/merge-patch+json", "Accept": "application/json"},
        {"spec": {"replicas": 5}},
    )
    result = sync(cluster, render, SyncOptions(force=False))
    assert not result.ok
    (failed,) = [r for r in result.results if r.outcome == "failed"]
    assert (
        "kubectl-scale" in failed.message and "conflicts: spec.replicas (owned by" in failed.message
    )
    st = read_status(cluster, ApplySetParent.for_cluster(CLUSTER))
    assert st["lastResult"] == "failed" and "StatefulSet/payments/ledger-db" in st["lastError"]


def test_removing_an_app_prunes_its_objects_and_nothing_else(api: ApiServer, fleet: Path) -> None:
    cluster = connect(api)
    assert sync(cluster, render_of(fleet, "staging")).ok
    # An object someone else made, with labels that look like ours but no ApplySet membership.
    foreign = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "catalog-notes",
            "namespace": "storefront",
            "labels": {"app.kubernetes.io/name": "catalog"},
        },
    }
    cluster.apply(foreign, force=True, manager="someone")
    (fleet / "apps/storefront/catalog.yaml").unlink()
    result = sync(cluster, render_of(fleet, "staging"))
    assert result.ok, result.to_dict()
    pruned = sorted(str(r.key) for r in result.results if r.outcome == "pruned")
    assert pruned == ["Deployment/storefront/catalog", "Service/storefront/catalog"]
    assert cluster.get("apps/v1", "Deployment", "storefront", "catalog") is None
    assert cluster.get("v1", "ConfigMap", "storefront", "catalog-notes") is not None
    assert cluster.get("apps/v1", "Deployment", "storefront", "web") is not None


def _pvc_fleet(fleet: Path) -> None:
    (fleet / "apps/platform/scratch.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\nmetadata: {name: scratch, team: platform}\n"
        "spec:\n  objects:\n    - apiVersion: v1\n      kind: PersistentVolumeClaim\n      metadata: {name: scratch}\n"
        "      spec:\n        accessModes: [ReadWriteOnce]\n        resources: {requests: {storage: 1Gi}}\n"
    )


def test_a_protected_pvc_stays_and_is_reported(api: ApiServer, fleet: Path) -> None:
    _pvc_fleet(fleet)
    cluster = connect(api)
    assert sync(cluster, render_of(fleet)).ok
    (fleet / "apps/platform/scratch.yaml").unlink()
    result = sync(cluster, render_of(fleet))
    (skipped,) = [r for r in result.results if r.outcome == "skipped"]
    assert (
        str(skipped.key) == "PersistentVolumeClaim/platform/scratch"
        and "protected" in skipped.message
    )
    assert cluster.get("v1", "PersistentVolumeClaim", "platform", "scratch") is not None


def test_a_change_that_would_prune_most_of_the_inventory_is_refused(
    api: ApiServer, fleet: Path
) -> None:
    cluster = connect(api)
    assert sync(cluster, render_of(fleet, "staging")).ok
    for app in (
        "storefront/web.yaml",
        "storefront/catalog.yaml",
        "payments/ledger-db.yaml",
        "payments/session-store.yaml",
    ):
        (fleet / "apps" / app).unlink()
    for team in ("storefront", "payments"):
        (fleet / "teams" / f"{team}.yaml").unlink()
    shutil.rmtree(fleet / "apps/storefront")
    shutil.rmtree(fleet / "apps/payments")
    api.log.clear()
    result = sync(cluster, render_of(fleet, "staging"))
    assert not result.ok and result.refused and "over the budget" in result.refused[0]
    assert writes(api) == 0
    assert any(r.outcome == "skipped" and "prune refused" in r.message for r in result.results)
    allowed = sync(
        cluster, render_of(fleet, "staging"), SyncOptions(plan=PlanOptions(allow_mass_prune=True))
    )
    assert allowed.ok and allowed.counts()["pruned"] > 0


def test_sync_converges_through_bursts_of_429_and_503(api: ApiServer, fleet: Path) -> None:
    api.faults.reseed(7)
    api.faults.add("/api*", status=429, rate=0.2, retry_after=0)
    api.faults.add("/api*", status=503, rate=0.1)
    cluster = connect(api)
    result = sync(cluster, render_of(fleet))
    assert result.ok, result.to_dict()
    assert cluster.stats.retries > 0
    api.faults.clear()
    assert plan_cluster(cluster, render_of(fleet))[0].in_sync


@pytest.mark.parametrize("kill_after", [3, 11, 25])
def test_a_sync_killed_midway_converges_on_the_next_run(
    api: ApiServer, fleet: Path, kill_after: int
) -> None:
    render = render_of(fleet)
    api.faults.kill_after_writes(kill_after)
    cluster = Cluster(
        api.api_client(), ClusterOptions(retries=1, backoff=0.001, timeout=2), sleep=lambda _: None
    )
    with pytest.raises(Exception):  # noqa: B017 - the client sees a dead server
        result = sync(cluster, render)
        assert not result.ok
        raise RuntimeError("sync finished without noticing the kill")
    api.faults.revive()
    again = sync(connect(api), render)
    assert again.ok, again.to_dict()
    assert not [r for r in again.results if r.outcome == "pruned"]
    assert plan_cluster(connect(api), render)[0].in_sync


def test_plan_and_sync_commands_use_kubeconfig_and_exit_codes(api: ApiServer, fleet: Path) -> None:
    runner = CliRunner()
    kube = ["--kubeconfig", str(api.kubeconfig_path), "--context", "specc-double"]
    planned = runner.invoke(cli, ["plan", str(fleet), "--cluster", CLUSTER, *kube])
    assert planned.exit_code == 1, planned.output
    assert "create" in planned.output and "Deployment/storefront/web" in planned.output
    # `sync --dry-run` is plan: the same output, the same exit code, nothing written.
    dry = runner.invoke(cli, ["sync", str(fleet), "--cluster", CLUSTER, "--dry-run", *kube])
    assert (dry.exit_code, dry.stdout) == (planned.exit_code, planned.stdout) and writes(api) == 0
    assert dry.stderr.startswith(f"cluster {CLUSTER}: context specc-double, server {api.url}\n")
    synced = runner.invoke(cli, ["sync", str(fleet), "--cluster", CLUSTER, "-o", "json", *kube])
    assert synced.exit_code == 0, synced.output
    data = json.loads(synced.stdout)
    assert data["ok"] is True
    assert data["connection"]["context"] == "specc-double"
    assert data["connection"]["server"] == api.url
    in_sync = runner.invoke(cli, ["plan", str(fleet), "--cluster", CLUSTER, *kube])
    assert in_sync.exit_code == 0 and "in sync" in in_sync.output


def test_an_immutable_field_change_is_reported_with_object_and_field(
    api: ApiServer, fleet: Path
) -> None:
    cluster = connect(api)
    assert sync(cluster, render_of(fleet)).ok
    web = fleet / "apps/storefront/web.yaml"
    web.write_text(
        web.read_text().replace("  name: web\n", "  name: web\n  labels: {tier: front}\n", 1)
    )
    render = render_of(fleet)
    # Labels go to the pod selector only through specc's own selector; change the selector by hand.
    for obj in render.objects:
        if obj.kind == "Deployment" and obj.name == "web":
            obj.body["spec"]["selector"]["matchLabels"]["tier"] = "front"
            obj.body["spec"]["template"]["metadata"]["labels"]["tier"] = "front"
    result = sync(cluster, render)
    (failed,) = [r for r in result.results if r.outcome == "failed"]
    assert str(failed.key) == "Deployment/storefront/web"
    assert "spec.selector" in failed.message and "specc.dev/recreate" in failed.message


def test_diff_against_a_live_cluster_shows_drift_and_creations(api: ApiServer, fleet: Path) -> None:
    runner = CliRunner()
    kube = ["--kubeconfig", str(api.kubeconfig_path), "--context", "specc-double"]
    cluster = connect(api)
    render = render_of(fleet)
    assert sync(cluster, render).ok
    in_sync = runner.invoke(cli, ["diff", str(fleet), "--cluster", CLUSTER, *kube])
    assert in_sync.exit_code == 0, in_sync.output
    cluster.request(
        "patch",
        "PATCH",
        "/apis/apps/v1/namespaces/payments/statefulsets/ledger-db",
        [("fieldManager", "kubectl-scale")],
        {"spec": {"replicas": 5}},
        "application/merge-patch+json",
    )
    cluster.delete(ObjectKey("", "Service", "storefront", "web"), "v1")
    drifted = runner.invoke(cli, ["diff", str(fleet), "--cluster", CLUSTER, "-o", "json", *kube])
    assert drifted.exit_code == 1, drifted.output
    (dev,) = json.loads(drifted.stdout)["clusters"]
    assert [o["object"] for o in dev["added"]] == ["Service/storefront/web"]
    (changed,) = dev["changed"]
    assert changed["object"] == "StatefulSet/payments/ledger-db"
    assert [(f["path"], f["old"], f["new"]) for f in changed["fields"]] == [("spec.replicas", 5, 1)]

"""The parent's record, when it is lost (issue 18, "small but sharp").

A final status write that fails must not leave ``lastResult: syncing`` once a later sync
succeeds; a deleted parent ConfigMap must not turn the history guard off after a restart.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from specc.agent import SyncFailed
from specc.errors import Position
from specc.objects import ClusterRender, DesiredObject
from specc.pipeline import render_path
from specc.progress import Progress
from specc.sync import Cluster, ClusterOptions, SyncOptions, sync
from specc.sync.apply import read_status
from specc.sync.cluster import ApiError
from specc.sync.inventory import ApplySetParent
from specc.testing import ApiServer
from specc.testing.pytest_plugin import KubeTarget
from tests.clusters import run
from tests.test_agent import CLUSTER, Repo, git, make_agent

PARENT = ApplySetParent.for_cluster(CLUSTER)
ORIGIN = "Manifests/team/app"
PARENT_PATH = f"/api/v1/namespaces/{PARENT.namespace}/configmaps/{PARENT.name}"


def kube(api: ApiServer) -> list[str]:
    return ["--kubeconfig", str(api.kubeconfig_path), "--context", "specc-double"]


def client(api: ApiServer) -> Cluster:
    return Cluster(api.api_client(), ClusterOptions(backoff=0.001), sleep=lambda _: None)


def delete_parent(api: ApiServer) -> None:
    assert client(api).delete(PARENT.key, "v1")


class FailTheFinalStatusWrite(Progress):
    """Arms a fault on the parent once the sync starts applying: the "syncing" write is
    done, the final status write fails (403, not retried)."""

    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.armed = False

    def phase(self, name: str, total: int | None = None) -> None:
        if name.startswith("apply") and not self.armed:
            self.armed = True
            self.api.faults.add(PARENT_PATH, method="PATCH", status=403, times=1)


def fail_the_next_parent_write(api: ApiServer) -> SyncOptions:
    return SyncOptions(commit="c1", progress=FailTheFinalStatusWrite(api), concurrency=1)


def test_a_failed_final_status_write_is_overwritten_by_the_next_successful_sync(
    api: ApiServer, fleet: Path
) -> None:
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    _, (render,) = render_path(fleet, [CLUSTER])
    cluster = client(api)
    with pytest.raises(ApiError):
        sync(cluster, render, fail_the_next_parent_write(api))
    assert read_status(cluster, PARENT)["lastResult"] == "syncing"
    again = sync(cluster, render, SyncOptions(commit="c1"))
    assert again.ok and not again.writes, again.to_dict()  # every object was applied already
    recorded = read_status(cluster, PARENT)
    assert (recorded["lastResult"], recorded["lastAppliedCommit"]) == ("applied", "c1")
    assert "lastError" not in recorded


def test_the_agent_records_applied_after_its_final_status_write_failed(
    api: ApiServer, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    head = repo.commit("initial fleet")
    agent = make_agent(api, repo, tmp_path)
    agent.options = replace(agent.options, sync=fail_the_next_parent_write(api))
    with pytest.raises(ApiError):
        agent.step()
    assert read_status(client(api), PARENT)["lastResult"] == "syncing"
    restarted = make_agent(api, repo, tmp_path / "again")
    assert restarted.step() == "applied"
    recorded = read_status(client(api), PARENT)
    assert (recorded["lastResult"], recorded["lastAppliedCommit"]) == ("applied", head)


def git_fleet(tmp_path: Path, fleet: Path) -> tuple[Path, Path, str]:
    """Return (fleet at c2, a stale copy at c1, c2): the history a lost parent would hide."""
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    repo = tmp_path / "origin"
    repo.mkdir()
    fleet = Path(shutil.move(fleet, repo / "fleet"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c1")
    stale = tmp_path / "stale"
    shutil.copytree(repo, stale)
    (fleet / "apps/storefront/extra.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\nmetadata: {name: extra, team: storefront}\n"
        "spec:\n  objects:\n    - apiVersion: v1\n      kind: ConfigMap\n"
        "      metadata: {name: extra}\n      data: {a: b}\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c2")
    return fleet, stale / "fleet", git(repo, "rev-parse", "HEAD")


def test_a_deleted_parent_does_not_let_a_stale_copy_through(
    api: ApiServer, tmp_path: Path, fleet: Path
) -> None:
    fleet, stale, _ = git_fleet(tmp_path, fleet)
    assert run("sync", str(fleet), "--cluster", CLUSTER, *kube(api)).exit_code == 0
    delete_parent(api)
    api.log.clear()
    for command in ("plan", "sync"):
        refused = run(command, str(stale), "--cluster", CLUSTER, *kube(api))
        said = " ".join((refused.stdout + refused.stderr).split())
        assert refused.exit_code == 1, refused.output
        assert f"the ApplySet parent specc-system/{PARENT.name} is missing" in said
        assert "ConfigMap/storefront/extra" in said or " more" in said
        assert "--allow-rewind" in said
    assert api.log.writes() == 0
    assert client(api).get("v1", "ConfigMap", "storefront", "extra") is not None
    # The operator decides: the sync goes on and the parent is there again.
    allowed = run("sync", str(fleet), "--cluster", CLUSTER, *kube(api), "--allow-rewind")
    assert allowed.exit_code == 0, allowed.output
    assert run("sync", str(fleet), "--cluster", CLUSTER, *kube(api)).exit_code == 0
    back = run("sync", str(stale), "--cluster", CLUSTER, *kube(api), "-o", "json")
    assert back.exit_code == 1 and "does not descend" in back.output


def test_a_first_sync_and_a_sync_after_a_failed_one_are_not_orphans(
    api: ApiServer, fleet: Path
) -> None:
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    api.faults.add("/apis/apps/v1/namespaces/*", method="PATCH", status=403, times=1)
    failed = run("sync", str(fleet), "--cluster", CLUSTER, *kube(api))
    assert failed.exit_code == 1, failed.output
    assert "parent" not in failed.stderr
    assert run("sync", str(fleet), "--cluster", CLUSTER, *kube(api)).exit_code == 0


def test_an_agent_started_after_the_parent_was_deleted_refuses_until_allowed(
    api: ApiServer, tmp_path: Path
) -> None:
    repo = Repo(tmp_path)
    repo.commit("initial fleet")
    running = make_agent(api, repo, tmp_path / "a")
    assert running.step() == "applied"
    # While it runs, the agent knows what it applied: a lost parent is simply re-created.
    delete_parent(api)
    assert running.step() in ("healed", "unchanged")
    assert read_status(client(api), PARENT)["lastResult"] == "applied"

    delete_parent(api)
    repo.edit("apps/storefront/web.yaml", "LOG_FORMAT: json", "LOG_FORMAT: text")
    repo.commit("next")
    for attempt in ("b", "c"):  # the refusal recorded re-creates no record of members
        restarted = make_agent(api, repo, tmp_path / attempt)
        with pytest.raises(SyncFailed, match="ApplySet parent specc-system/specc-dev"):
            restarted.step()
        recorded = read_status(client(api), PARENT)
        assert recorded["lastResult"] == "failed" and "--allow-rewind" in recorded["lastError"]
        assert "lastAppliedCommit" not in recorded
    allowed = make_agent(api, repo, tmp_path / "d", allow_rewind=True)
    assert allowed.step() == "applied"


def test_members_someone_else_labelled_are_no_sign_of_a_lost_parent(
    api: ApiServer, fleet: Path
) -> None:
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "planted",
            "namespace": "default",
            "labels": {"applyset.kubernetes.io/part-of": PARENT.id},
        },
    }
    cluster = client(api)
    cluster.request(
        "create",
        "POST",
        "/api/v1/namespaces/default/configmaps",
        [("fieldManager", "kubectl")],
        body,
        "application/json",
    )
    # A first sync onto a cluster where someone copied specc's label is no lost parent.
    done = run("sync", str(fleet), "--cluster", CLUSTER, *kube(api), "-o", "json")
    assert done.exit_code == 0, done.output
    delete_parent(api)
    refused = run("sync", str(fleet), "--cluster", CLUSTER, *kube(api))
    said = " ".join(line for line in refused.output.splitlines() if "refused" in line)
    assert refused.exit_code == 1 and "is missing" in said, refused.output
    assert "planted" not in said
    assert cluster.get("v1", "ConfigMap", "default", "planted") is not None


def test_a_deleted_parent_refuses_on_both_tiers(kube: KubeTarget) -> None:
    ns = kube.namespace
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": ns}}
    objects = [DesiredObject({**body, "data": {"k": "v"}}, Position("apps/a.yaml", 3, 1), ORIGIN)]
    render = ClusterRender("dev", "1.33", objects, fleet="acme")
    options = SyncOptions(parent_namespace=ns)
    cluster = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))
    assert sync(cluster, render, options).ok
    parent = ApplySetParent.for_cluster("dev", "acme", ns)
    assert cluster.delete(parent.key, "v1")
    after = Cluster.connect(ClusterOptions(kubeconfig=str(kube.kubeconfig_path)))
    refused = sync(after, render, options)
    assert not refused.ok and after.stats.writes == 0
    (why,) = refused.refused
    assert f"the ApplySet parent {ns}/specc-dev is missing" in why and f"ConfigMap/{ns}/a" in why
    assert sync(after, render, replace(options, allow_rewind=True)).ok
    assert read_status(after, parent)["lastResult"] == "applied"
    assert sync(after, render, options).ok

"""The example fleet on the double, through the CLI: the remaining "seen" lines of the
cluster-safety issue (discovery, dirty revisions) and of the hostile-commit issue (a
commit that raises its own prune budget), each reproduced and shown fixed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from specc.sync.identity import ParentIdentity, foreign, specc_sets
from specc.sync.inventory import ApplySetParent
from specc.sync.ownership import owner_of
from specc.sync.plan import PlanOptions, effective_budget
from specc.testing import ApiServer
from tests.clusters import run, target_line

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("SPECC_TEST_KUBECONFIG")), reason="reads the double's request log"
)


def kube(api: ApiServer) -> list[str]:
    return ["--kubeconfig", str(api.kubeconfig_path), "--context", "specc-double"]


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_plan_names_kinds_the_cluster_does_not_serve_before_any_sync_tries(
    api: ApiServer, fleet: Path
) -> None:
    # Seen: on a cluster without the prometheus-operator CRDs plan reported 55 creates
    # and exit 1 as if all were fine; the sync then failed 5 objects.
    planned = run("plan", str(fleet), "--cluster", "prod-eu", *kube(api), "-o", "json")
    assert planned.exit_code == 1, planned.output
    data = json.loads(planned.stdout)
    refused = {e["object"]: e["refused"] for e in data["entries"] if "refused" in e}
    assert sorted(refused) == [
        "Alertmanager/storefront/monitoring",
        "AlertmanagerConfig/storefront/monitoring",
        "Prometheus/storefront/monitoring",
        "PrometheusRule/storefront/monitoring",
        "ServiceMonitor/storefront/monitoring-apps",
    ]
    assert refused["AlertmanagerConfig/storefront/monitoring"] == (
        "the cluster does not serve monitoring.coreos.com/v1alpha1 AlertmanagerConfig, "
        "and the commit has no CustomResourceDefinition for it"
    )
    text = run("plan", str(fleet), "--cluster", "prod-eu", *kube(api))
    assert re.search(
        r"create +Prometheus/storefront/\S+ +refused: the cluster does not serve", text.stdout
    )
    assert f"; {len(refused)} refused" in text.stdout

    api.log.clear()
    synced = run("sync", str(fleet), "--cluster", "prod-eu", *kube(api), "-o", "json")
    assert synced.exit_code == 1
    results = {r["object"]: r["result"] for r in json.loads(synced.stdout)["results"]}
    assert {o for o, r in results.items() if r == "refused"} == set(refused)
    assert "failed" not in results.values()
    # Never sent: no request to the group the cluster lacks.
    assert not [r for r in api.requests if "monitoring.coreos.com" in r.path and r.method != "GET"]


def test_a_sync_from_a_dirty_tree_records_sha_dirty_and_the_content_hash(
    api: ApiServer, tmp_path: Path, fleet: Path
) -> None:
    # Seen: with uncommitted edits, sync recorded lastAppliedCommit: <HEAD> although the
    # live image came from the dirty file.
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    git(fleet.parent, "init", "-q", "-b", "main")
    git(fleet.parent, "add", "-A")
    git(fleet.parent, "commit", "-qm", "c1")
    head = git(fleet.parent, "rev-parse", "HEAD")

    clean = run("sync", str(fleet), "--cluster", "dev", *kube(api))
    assert clean.exit_code == 0, clean.output
    status = json.loads(
        run("status", str(fleet), "--cluster", "dev", *kube(api), "-o", "json").stdout
    )
    assert status["lastAppliedCommit"] == head
    clean_hash = status["lastAppliedContent"]
    assert clean_hash.startswith("sha256:")

    web = fleet / "apps/storefront/web.yaml"
    web.write_text(re.sub(r"image: (\S+):\S+", r"image: \1:9.9.9", web.read_text(), count=1))
    dirty = run("sync", str(fleet), "--cluster", "dev", *kube(api))
    assert dirty.exit_code == 0, dirty.output
    shown = run("status", str(fleet), "--cluster", "dev", *kube(api))
    assert f"lastAppliedCommit: {head}-dirty" in shown.stdout
    assert f"is commit {head} with uncommitted changes" in shown.stdout
    data = json.loads(
        run("status", str(fleet), "--cluster", "dev", *kube(api), "-o", "json").stdout
    )
    assert data["lastAppliedContent"] not in ("", clean_hash)


def test_a_commit_that_raises_its_prune_budget_still_gets_the_old_one(
    api: ApiServer, fleet: Path
) -> None:
    # Seen (issue 18): budget: 1.0 in the commit removed 90 of 100 objects, exit 0.
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    assert run("sync", str(fleet), "--cluster", "dev", *kube(api)).exit_code == 0
    fleet_yaml = fleet / "fleet.yaml"
    fleet_yaml.write_text(fleet_yaml.read_text().replace("budget: 0.25", "budget: 1.0"))
    for team in ("storefront", "payments"):
        shutil.rmtree(fleet / "apps" / team)
        (fleet / "teams" / f"{team}.yaml").unlink()
    api.log.clear()
    hostile = run("sync", str(fleet), "--cluster", "dev", *kube(api))
    assert hostile.exit_code == 1
    said = " ".join((hostile.stdout + hostile.stderr).split())  # tables wrap long lines
    assert "over the budget of 25% (the last applied commit's)" in said
    assert api.log.writes() == 0
    assert target_line(hostile).startswith("cluster dev: context specc-double")
    # The operator can allow it (for this run), or raise the ceiling for good.
    allowed = run("sync", str(fleet), "--cluster", "dev", *kube(api), "--allow-mass-prune")
    assert allowed.exit_code == 0, allowed.output


def test_a_stale_copy_of_the_fleet_does_not_undo_newer_commits(
    api: ApiServer, tmp_path: Path, fleet: Path
) -> None:
    # Seen (issue 18): a stale copy of the fleet with the same cluster name pruned the
    # original's objects. Same fleet name, same cluster: what differs is the history.
    (fleet / "apps/storefront/monitoring.yaml").unlink()
    repo = tmp_path / "origin"
    repo.mkdir()
    fleet = Path(shutil.move(fleet, repo / "fleet"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c1")
    stale = tmp_path / "stale"
    shutil.copytree(repo, stale)  # the copy someone made at c1
    (fleet / "apps/storefront/extra.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\nmetadata: {name: extra, team: storefront}\n"
        "spec:\n  objects:\n    - apiVersion: v1\n      kind: ConfigMap\n"
        "      metadata: {name: extra}\n      data: {a: b}\n"
    )
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c2")
    c2 = git(repo, "rev-parse", "HEAD")
    assert run("sync", str(fleet), "--cluster", "dev", *kube(api)).exit_code == 0

    api.log.clear()
    old = run("sync", str(stale / "fleet"), "--cluster", "dev", *kube(api))
    assert old.exit_code == 1, old.output
    said = " ".join((old.stdout + old.stderr).split())
    assert f"the cluster was last synced from {c2}, and " in said
    assert "does not descend from it (a stale copy, or an older branch?)" in said
    assert api.log.writes() == 0
    planned = run("plan", str(stale / "fleet"), "--cluster", "dev", *kube(api))
    assert planned.exit_code == 1 and "--allow-rewind" in planned.stderr
    back = run("sync", str(stale / "fleet"), "--cluster", "dev", *kube(api), "--allow-rewind")
    assert back.exit_code == 0, back.output
    # Not a git checkout: nothing to compare, said so.
    shutil.rmtree(stale / ".git")
    shutil.rmtree(stale / "fleet/apps/platform")
    unknown = run("plan", str(stale / "fleet"), "--cluster", "dev", *kube(api))
    assert "cannot tell whether this fleet descends from the applied revision" in unknown.stderr


# -- pure tables of the guards' decisions ----------------------------------------------------------


def parent(name: str, fleet: str | None, cluster: str | None) -> dict[str, object]:
    labels = {"applyset.kubernetes.io/id": ApplySetParent(name).id}
    if fleet:
        labels["specc.dev/fleet"] = fleet
    if cluster:
        labels["specc.dev/cluster"] = cluster
    return {"metadata": {"name": name, "namespace": "specc-system", "labels": labels}}


@pytest.mark.parametrize(
    ("server_holds", "foreign_names"),
    [
        ([], []),
        ([("specc-dev", "acme", "dev")], []),
        ([("specc-dev", None, None)], []),  # legacy parent of this cluster: ours
        ([("specc-dev", "other", "dev")], ["specc-dev"]),  # another fleet's dev
        ([("specc-staging", "acme", "staging")], ["specc-staging"]),
        ([("specc-staging", None, None)], ["specc-staging"]),  # legacy, another cluster
        ([("specc-dev", "acme", "dev"), ("specc-prod", "acme", "prod")], ["specc-prod"]),
        ([("specc-dev", "acme", "prod")], ["specc-dev"]),  # our name, another's label
    ],
)
def test_identity_guard_table(
    server_holds: list[tuple[str, str | None, str | None]], foreign_names: list[str]
) -> None:
    parents = [parent(*p) for p in server_holds]
    found = foreign(ApplySetParent.for_cluster("dev", "acme"), parents)
    assert [f.name for f in found] == foreign_names


def test_a_legacy_parent_is_described_as_of_an_unrecorded_fleet() -> None:
    ident = ParentIdentity.of(parent("specc-staging", None, None))
    assert ident.legacy and ident.describe() == (
        "cluster staging of an unrecorded fleet (ConfigMap specc-system/specc-staging)"
    )


@pytest.mark.parametrize(
    ("labels", "notes", "owner"),
    [
        ({}, {}, ""),
        ({"app.kubernetes.io/managed-by": "kubectl"}, {}, ""),
        ({"applyset.kubernetes.io/part-of": "applyset-x-v1"}, {}, "ApplySet applyset-x-v1"),
        ({"app.kubernetes.io/managed-by": "Helm"}, {}, "Helm"),
        (
            {},
            {"meta.helm.sh/release-name": "r", "meta.helm.sh/release-namespace": "n"},
            "Helm release n/r",
        ),
        (
            {
                "applyset.kubernetes.io/part-of": "applyset-x-v1",
                "app.kubernetes.io/managed-by": "specc",
            },
            {},
            "another specc ApplySet applyset-x-v1",
        ),
        (
            {"applyset.kubernetes.io/part-of": ApplySetParent("specc-prod").id},
            {},
            "specc cluster prod of fleet acme",
        ),
        ({"applyset.kubernetes.io/part-of": ApplySetParent("specc-dev").id}, {}, ""),  # ours
    ],
)
def test_ownership_table(labels: dict[str, str], notes: dict[str, str], owner: str) -> None:
    live = {"metadata": {"name": "x", "namespace": "n", "labels": labels, "annotations": notes}}
    known = specc_sets([parent("specc-prod", "acme", "prod")])
    assert owner_of(live, ApplySetParent("specc-dev").id, known) == owner


@pytest.mark.parametrize(
    ("commit", "recorded", "operator", "budget", "why"),
    [
        (0.25, None, None, 0.25, "this commit's"),
        (1.0, None, None, 0.25, "the operator's (--prune-budget)"),
        (1.0, "0.25", 1.0, 0.25, "the last applied commit's"),
        (1.0, "1", 0.5, 0.5, "the operator's (--prune-budget)"),
        (0.1, "0.25", None, 0.1, "this commit's"),
        (0.5, "junk", 0.6, 0.5, "this commit's"),
    ],
)
def test_prune_budget_table(
    commit: float, recorded: str | None, operator: float | None, budget: float, why: str
) -> None:
    live_parent = {"data": {"pruneBudget": recorded}} if recorded is not None else None
    options = PlanOptions(prune_budget=commit, operator_budget=operator)
    assert effective_budget(options, live_parent) == (budget, why)

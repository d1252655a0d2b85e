"""`specc diff` end to end: a git repository with the example fleet and commits on top.

The markdown of a typical pull request is checked against tests/golden/diff_pr.md.
Regenerate it after an intended change with:

    SPECC_UPDATE_GOLDEN=1 pytest tests/test_diff_git.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from specc.cli import cli
from specc.pipeline import render_path
from tests.helpers import FLEET, edit

GOLDEN = Path(__file__).resolve().parent / "golden" / "diff_pr.md"

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "specc tests",
    "GIT_AUTHOR_EMAIL": "tests@specc.invalid",
    "GIT_COMMITTER_NAME": "specc tests",
    "GIT_COMMITTER_EMAIL": "tests@specc.invalid",
    "GIT_AUTHOR_DATE": "2026-11-22T12:00:00Z",
    "GIT_COMMITTER_DATE": "2026-11-22T12:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **_GIT_ENV},
    )
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository whose first commit holds a copy of the example fleet at fleet/."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.copytree(FLEET, root / "fleet")
    commit(root, "fleet")
    return root


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def diff_json(repo: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run("diff", str(repo / "fleet"), "--base", "HEAD~1", "--head", "HEAD", *extra)
    return result.exit_code, json.loads(result.stdout)


def diff(repo: Path) -> tuple[int, dict[str, Any]]:
    return diff_json(repo, "-o", "json")


def cluster(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in data["clusters"] if c["cluster"] == name)


def refs(entries: list[dict[str, Any]]) -> list[str]:
    return [e["object"] for e in entries]


def fields(data: dict[str, Any], name: str, ref: str) -> dict[str, Any]:
    change = next(ch for ch in cluster(data, name)["changed"] if ch["object"] == ref)
    return {f["path"]: f for f in change["fields"]}


# --- one change per commit -------------------------------------------------------


def test_no_change_exits_0(repo: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", "empty")
    code, data = diff(repo)
    assert code == 0
    assert data["changed"] is False
    assert [c["status"] for c in data["clusters"]] == ["unchanged"] * 3


def test_scaling_an_app_changes_replicas_only_where_no_override_pins_them(repo: Path) -> None:
    edit(repo / "fleet", "apps/payments/ledger-db.yaml", "members: 3", "members: 5")
    commit(repo, "scale ledger-db")
    code, data = diff(repo)
    assert code == 1
    assert cluster(data, "dev")["status"] == "unchanged"  # dev overrides members: 1
    for name in ("staging", "prod-eu"):
        c = cluster(data, name)
        assert refs(c["changed"]) == ["StatefulSet/payments/ledger-db"]
        f = fields(data, name, "StatefulSet/payments/ledger-db")["spec.replicas"]
        assert (f["old"], f["new"]) == (3, 5)
        assert c["added"] == [] and c["removed"] == []


def test_changing_a_config_file_replaces_the_hashed_configmap_and_rolls_the_pods(
    repo: Path,
) -> None:
    edit(repo / "fleet", "config/web/nginx.conf", "listen 8080;", "listen 8081;")
    commit(repo, "nginx port")
    code, data = diff(repo)
    assert code == 1
    for name in ("dev", "staging", "prod-eu"):
        c = cluster(data, name)
        assert c["added"] == [] and c["removed"] == []
        (cm,) = [ch for ch in c["changed"] if ch["kind"] == "ConfigMap"]
        assert cm["replaces"].startswith("ConfigMap/storefront/web-config-")
        conf = {f["path"]: f for f in cm["fields"]}['data["default.conf"]']
        assert "listen 8080;" in conf["old"] and "listen 8081;" in conf["new"]
        web = fields(data, name, "Deployment/storefront/web")
        volume = web["spec.template.spec.volumes[name=config].configMap.name"]
        assert volume["new"] == cm["name"]
        assert c["prunes"] == 1 and c["warnings"] == []


def test_adding_an_app_adds_its_objects_on_the_clusters_it_is_placed_on(repo: Path) -> None:
    (repo / "fleet/apps/storefront/search.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\n"
        "kind: Service\n"
        "metadata: {name: search, team: storefront}\n"
        "spec:\n"
        "  image: ghcr.io/acme/search:1.0.0\n"
        "  replicas: 2\n"
        "  ports: [{name: http, port: 8080}]\n"
        "placement:\n"
        "  environments: [prod]\n",
        encoding="utf-8",
    )
    commit(repo, "add search")
    code, data = diff(repo)
    assert code == 1
    assert cluster(data, "dev")["status"] == "unchanged"
    assert cluster(data, "staging")["status"] == "unchanged"
    prod = cluster(data, "prod-eu")
    assert "Deployment/storefront/search" in refs(prod["added"])
    assert "Service/storefront/search" in refs(prod["added"])
    assert all(a["source"].startswith("apps/storefront/search.yaml:") for a in prod["added"])
    assert prod["removed"] == [] and prod["changed"] == []


def test_removing_a_stateful_app_flags_the_prune_of_its_data(repo: Path) -> None:
    (repo / "fleet/apps/payments/ledger-db.yaml").unlink()
    commit(repo, "remove ledger-db")
    code, data = diff(repo)
    assert code == 1
    for name in ("dev", "staging", "prod-eu"):
        c = cluster(data, name)
        assert "StatefulSet/payments/ledger-db" in refs(c["removed"])
        sts = next(r for r in c["removed"] if r["kind"] == "StatefulSet")
        assert sts["warnings"] == ["data-volumes"]
        assert any(w["reason"] == "data-volumes" for w in c["warnings"])
    result = run("diff", str(repo / "fleet"), "--base", "HEAD~1", "-o", "markdown")
    assert "- **prod-eu: StatefulSet/payments/ledger-db is removed" in result.stdout


def test_removing_a_team_namespace_warns_the_sync_will_keep_it(repo: Path) -> None:
    (repo / "fleet/apps/platform/etcd-operator.yaml").unlink()
    (repo / "fleet/apps/payments/session-store.yaml").unlink()
    commit(repo, "remove the etcd operator and its cluster")
    code, data = diff(repo)
    assert code == 1
    c = cluster(data, "prod-eu")
    crd = "CustomResourceDefinition/etcdclusters.etcd.database.coreos.com"
    assert crd in refs(c["removed"])
    assert next(r for r in c["removed"] if r["object"] == crd)["warnings"] == ["protected"]


def test_changing_a_crd_field_in_fleet_crds_shows_the_schema_change(repo: Path) -> None:
    edit(
        repo / "fleet",
        "crds/etcdclusters.etcd.database.coreos.com.yaml",
        "maximum: 9",
        "maximum: 7",
    )
    commit(repo, "etcd: at most 7 members")
    code, data = diff(repo)
    assert code == 1
    path = (
        "spec.versions[name=v1beta2].schema.openAPIV3Schema.properties.spec.properties.size.maximum"
    )
    for name in ("dev", "staging", "prod-eu"):
        crd = "CustomResourceDefinition/etcdclusters.etcd.database.coreos.com"
        f = fields(data, name, crd)[path]
        assert (f["old"], f["new"]) == (9, 7)


def test_an_environment_override_changes_only_that_environments_clusters(repo: Path) -> None:
    edit(
        repo / "fleet",
        "apps/storefront/web.yaml",
        "host: shop.staging.acme.example",
        "host: shop.stage.acme.example",
    )
    commit(repo, "staging host")
    code, data = diff(repo)
    assert code == 1
    assert [c["cluster"] for c in data["clusters"] if c["status"] == "changed"] == ["staging"]
    f = fields(data, "staging", "Ingress/storefront/web")
    assert f["spec.rules[0].host"]["new"] == "shop.stage.acme.example"
    for other in ("dev", "prod-eu"):
        assert cluster(data, other)["counts"]["sourceMoved"] == 0


def test_moving_spec_lines_changes_no_object_and_exits_0(repo: Path) -> None:
    path = repo / "fleet/teams/payments.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("spec:\n", "# Payments owns the ledger.\n\nspec:\n", 1))
    commit(repo, "comment")
    code, data = diff(repo)
    assert code == 0
    assert data["changed"] is False
    # The source annotation names the file and the app, not the line: nothing moved.
    assert data["summary"]["sourceMoved"] == 0
    assert all(c["changed"] == [] for c in data["clusters"])


def test_moving_a_spec_to_another_file_only_moves_sources_and_exits_0(repo: Path) -> None:
    (repo / "fleet/apps/payments/ledger-db.yaml").rename(repo / "fleet/apps/payments/ledger.yaml")
    commit(repo, "rename")
    code, data = diff(repo)
    assert code == 0
    assert data["changed"] is False
    assert data["summary"]["sourceMoved"] > 0


# --- sides, errors, the working tree ---------------------------------------------


def test_head_defaults_to_the_working_tree_which_is_left_untouched(repo: Path) -> None:
    edit(repo / "fleet", "apps/payments/ledger-db.yaml", "members: 3", "members: 4")
    status = git(repo, "status", "--porcelain")
    worktrees = git(repo, "worktree", "list")
    result = run("diff", str(repo / "fleet"), "--base", "HEAD", "-o", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["head"] == {"rev": "working tree", "commit": None}
    assert data["base"]["commit"] == git(repo, "rev-parse", "HEAD")
    assert "StatefulSet/payments/ledger-db" in refs(cluster(data, "prod-eu")["changed"])
    assert git(repo, "status", "--porcelain") == status
    assert git(repo, "worktree", "list") == worktrees


def test_fleet_in_a_subfolder_is_found_at_the_same_path_in_the_base(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    result = run("diff", "--base", "HEAD")  # FLEET defaults to ./fleet
    assert result.exit_code == 0, result.output


def test_a_fleet_missing_at_the_base_has_every_cluster_added(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("fleet repo\n")
    commit(root, "readme")
    shutil.copytree(FLEET, root / "fleet")
    commit(root, "fleet")
    code, data = diff(root)
    assert code == 1
    assert [c["status"] for c in data["clusters"]] == ["added"] * 3


def test_an_unknown_revision_exits_2(repo: Path) -> None:
    result = run("diff", str(repo / "fleet"), "--base", "no-such-branch")
    assert result.exit_code == 2
    assert "unknown revision 'no-such-branch'" in result.output


def test_an_option_like_revision_is_refused(repo: Path) -> None:
    result = run("diff", str(repo / "fleet"), "--base=--output=/tmp/x")
    assert result.exit_code == 2
    assert "is not a revision" in result.output


def test_a_fleet_outside_git_exits_2(tmp_path: Path) -> None:
    shutil.copytree(FLEET, tmp_path / "fleet")
    result = run("diff", str(tmp_path / "fleet"), "--base", "main")
    assert result.exit_code == 2
    assert "not inside a git repository" in result.output


def test_a_broken_head_exits_1_with_file_and_line(repo: Path) -> None:
    edit(repo / "fleet", "apps/storefront/catalog.yaml", "replicas: 2", "replicas: -2")
    commit(repo, "broken")
    result = run("diff", str(repo / "fleet"), "--base", "HEAD~1", "--head", "HEAD")
    assert result.exit_code == 1
    assert "apps/storefront/catalog.yaml:" in result.output
    md = run("diff", str(repo / "fleet"), "--base", "HEAD~1", "--head", "HEAD", "-o", "markdown")
    assert md.exit_code == 1
    assert md.stdout.startswith("<!-- specc-diff -->")
    assert "does not render" in md.stdout and "apps/storefront/catalog.yaml:" in md.stdout


def broken_main(repo: Path) -> None:
    """Commit a base that does not render, then the change that fixes it."""
    edit(repo / "fleet", "apps/storefront/catalog.yaml", "replicas: 2", "replicas: -2")
    commit(repo, "broken")
    edit(repo / "fleet", "apps/storefront/catalog.yaml", "replicas: -2", "replicas: 2")
    commit(repo, "fixed")


def test_a_fix_of_a_broken_base_exits_1_with_the_heads_objects_added_and_a_note(
    repo: Path,
) -> None:
    broken_main(repo)
    code, data = diff(repo)
    assert code == 1
    assert data["base"]["renders"] is False
    (error,) = data["base"]["errors"]
    assert error["file"].endswith("fleet/apps/storefront/catalog.yaml")
    assert (error["field"], error["severity"]) == ("spec.replicas", "error")
    prod = cluster(data, "prod-eu")
    assert "Deployment/storefront/catalog" in refs(prod["added"])
    assert prod["removed"] == [] and prod["changed"] == []
    _, (render,) = render_path(repo / "fleet", ["prod-eu"])
    assert len(prod["added"]) == len(render.objects)


def test_a_fix_of_a_broken_base_says_so_in_text_and_markdown(repo: Path) -> None:
    broken_main(repo)
    text = run("diff", str(repo / "fleet"), "--base", "HEAD~1", "--head", "HEAD")
    assert text.exit_code == 1
    assert (
        "note: the fleet at HEAD~1 (" in text.stdout and "does not render (1 error)" in text.stdout
    )
    assert "catalog.yaml:" in text.stdout and ": error: spec.replicas:" in text.stdout
    md = run("diff", str(repo / "fleet"), "--base", "HEAD~1", "--head", "HEAD", "-o", "markdown")
    assert md.exit_code == 1 and md.stdout.startswith("<!-- specc-diff -->")
    assert "**Note: the fleet at" in md.stdout and "every object is shown as added" in md.stdout
    # The comment names the file as the repository holds it.
    assert "\nfleet/apps/storefront/catalog.yaml:" in md.stdout


def test_a_broken_base_and_a_broken_head_is_the_heads_errors(repo: Path) -> None:
    edit(repo / "fleet", "apps/storefront/catalog.yaml", "replicas: 2", "replicas: -2")
    commit(repo, "broken")
    edit(repo / "fleet", "apps/storefront/web.yaml", "minReplicas: 2", "minReplicas: 0")
    commit(repo, "still broken")
    result = run("diff", str(repo / "fleet"), "--base", "HEAD~1", "--head", "HEAD", "-o", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False and data["side"] == "head"
    assert {e["file"].rsplit("/", 1)[1] for e in data["errors"]} == {"catalog.yaml", "web.yaml"}


# --- the PR comment --------------------------------------------------------------


def test_markdown_of_a_typical_pull_request_matches_the_golden_file(repo: Path) -> None:
    fleet = repo / "fleet"
    edit(fleet, "apps/storefront/catalog.yaml", "replicas: 2", "replicas: 4")
    edit(fleet, "config/web/nginx.conf", "listen 8080;", "listen 8081;")
    edit(fleet, "crds/etcdclusters.etcd.database.coreos.com.yaml", "maximum: 9", "maximum: 7")
    (fleet / "apps/payments/ledger-db.yaml").unlink()
    (fleet / "apps/storefront/search.yaml").write_text(
        "apiVersion: specc.dev/v1alpha1\n"
        "kind: Service\n"
        "metadata: {name: search, team: storefront}\n"
        "spec:\n"
        "  image: ghcr.io/acme/search:1.0.0\n"
        "  ports: [{name: http, port: 8080}]\n",
        encoding="utf-8",
    )
    commit(repo, "a typical pull request")
    result = run("diff", str(fleet), "--base", "HEAD~1", "--head", "HEAD", "-o", "markdown")
    assert result.exit_code == 1
    text = result.stdout
    for rev, name in (("HEAD~1", "BASE"), ("HEAD", "HEAD")):
        text = text.replace(f"({git(repo, 'rev-parse', rev)[:7]})", f"({name})")
    if os.environ.get("SPECC_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "markdown differs from tests/golden/diff_pr.md; if intended, regenerate with "
        "SPECC_UPDATE_GOLDEN=1 pytest tests/test_diff_git.py"
    )


# --- the base rendered in a worker process ---------------------------------------


def test_a_base_rendered_in_a_worker_equals_one_rendered_in_process(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specc import gitrev

    edit(repo / "fleet", "apps/payments/ledger-db.yaml", "members: 3", "members: 5")
    commit(repo, "scale")
    monkeypatch.setattr(gitrev.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(gitrev.os, "cpu_count", lambda: 2)
    assert gitrev._worker() is not None
    worker = gitrev.render_sides(repo / "fleet", "HEAD~1", "HEAD", parallel=True)
    alone = gitrev.render_sides(repo / "fleet", "HEAD~1", "HEAD", parallel=False)
    for a, b in zip(worker, alone, strict=True):
        assert a.revision == b.revision
        assert [(r.cluster, [o.body for o in r.objects]) for r in a.renders] == [
            (r.cluster, [o.body for o in r.objects]) for r in b.renders
        ]


def test_a_broken_base_in_a_worker_comes_back_empty_with_its_errors(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specc import gitrev

    broken_main(repo)
    monkeypatch.setattr(gitrev.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(gitrev.os, "cpu_count", lambda: 2)
    before, after = gitrev.render_sides(repo / "fleet", "HEAD~1", "HEAD", parallel=True)
    assert before.renders == [] and after.renders
    assert any("catalog.yaml" in str(f) for f in before.errors)


def test_a_busy_machine_renders_both_sides_in_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    from specc import gitrev

    monkeypatch.setattr(gitrev.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(gitrev.os, "getloadavg", lambda: (3.0, 3.0, 3.0))
    assert gitrev._worker() is None

"""Errors tools can parse: ``path:line:col: error: message``, paths the user can open,
every error of an app in one run, list errors at the item."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import cli
from specc.errors import Finding, Position, ValidationError
from tests.helpers import edit, findings, line_of

WEB = "apps/storefront/web.yaml"
CATALOG = "apps/storefront/catalog.yaml"
#: The pattern editors' and CI problem matchers' "gcc" style matches.
PROBLEM = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning): (?P<msg>.+)$"
)


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def untagged(fleet: Path) -> Path:
    edit(fleet, WEB, "storefront-web:2.14.1", "storefront-web")
    return fleet


def test_a_finding_formats_as_path_line_col_severity_message() -> None:
    f = Finding(Position("apps/a.yaml", 3, 5), "bad", "spec.x", "Deployment/ns/a")
    assert f.format() == "apps/a.yaml:3:5: error: Deployment/ns/a: spec.x: bad"
    assert (
        f.format("fleet/apps/a.yaml")
        == "fleet/apps/a.yaml:3:5: error: Deployment/ns/a: spec.x: bad"
    )
    warn = Finding(Position("a.yaml"), "odd", severity="warning")
    assert warn.format() == "a.yaml: warning: odd"


def test_errors_name_files_relative_to_the_current_directory(
    untagged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(untagged.parent)
    for spelling in ("fleet", "./fleet", str(untagged)):
        code, _, err = run("validate", spelling, env={"GITHUB_ACTIONS": ""})
        assert code == 1
        line = err.splitlines()[0]
        m = PROBLEM.match(line)
        assert m, line
        assert (m["file"], m["line"], m["col"], m["sev"]) == (f"fleet/{WEB}", "8", "10", "error")
        assert (untagged.parent / m["file"]).is_file()


def test_errors_of_a_fleet_above_here_keep_the_users_spelling(
    untagged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    below = untagged.parent / "elsewhere"
    below.mkdir()
    monkeypatch.chdir(below)
    _, _, err = run("validate", "../fleet", env={"GITHUB_ACTIONS": ""})
    assert err.startswith(f"../fleet/{WEB}:8:10: error: spec.image: ")
    _, _, err = run("validate", str(untagged), env={"GITHUB_ACTIONS": ""})
    assert err.startswith(f"{untagged / WEB}:8:10: error: ")


def test_under_github_actions_paths_are_relative_to_the_repository_root(
    untagged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = untagged.parent
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(untagged / "apps")
    code, out, err = run("validate", "..", env={"GITHUB_ACTIONS": "true"})
    assert code == 1
    assert err.startswith(f"fleet/{WEB}:8:10: error: spec.image: ")
    assert out.startswith(f"::error file=fleet/{WEB},line=8,col=10::spec.image: ")


def test_under_github_actions_without_git_paths_are_relative_to_the_workspace(
    untagged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = untagged.parent
    monkeypatch.chdir(untagged / "apps")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace)}
    code, out, err = run("validate", "..", env=env)
    assert code == 1
    assert err.startswith(f"fleet/{WEB}:8:10: error: spec.image: ")
    assert out.startswith(f"::error file=fleet/{WEB},line=8,col=10::")


def test_json_errors_carry_the_same_path_and_numbers_as_numbers(
    untagged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(untagged.parent)
    _, _, err = run("validate", "fleet", env={"GITHUB_ACTIONS": ""})
    code, out, _ = run("validate", "fleet", "-o", "json", env={"GITHUB_ACTIONS": ""})
    assert code == 1
    (error,) = json.loads(out)["errors"]
    assert error == {
        "file": f"fleet/{WEB}",
        "line": 8,
        "column": 10,
        "severity": "error",
        "field": "spec.image",
        "object": "",
        "message": error["message"],
    }
    assert err.splitlines()[0] == f"fleet/{WEB}:8:10: error: spec.image: {error['message']}"


def test_a_usage_error_is_one_error_line_and_json_on_stdout(tmp_path: Path) -> None:
    code, _, err = run("validate", str(tmp_path / "none"))
    assert code == 2 and err.startswith("error: FLEET ")
    code, out, _ = run("validate", str(tmp_path / "none"), "-o", "json")
    doc = json.loads(out)
    assert code == 2 and doc["ok"] is False
    assert doc["errors"][0]["message"].startswith("FLEET ")


def test_every_error_of_one_app_comes_in_one_run(fleet: Path) -> None:
    # Two broken secrets, replicas next to autoscaling, a duplicate port and a broken
    # override: formerly one of them per run (fix one, see the next).
    edit(
        fleet,
        WEB,
        "    - secret: web-session\n      key: signing-key\n      env: SESSION_SIGNING_KEY\n",
        "    - secret: web-session\n      env: SESSION_SIGNING_KEY\n"
        "    - secret: web-tls\n"
        "    - secret: web-db\n      key: url\n      env: DB_URL\n",
    )
    edit(fleet, WEB, "spec:\n  image:", "spec:\n  replicas: 3\n  image:")
    edit(fleet, WEB, "    - name: metrics\n      port: 9090", "    - name: http\n      port: 9090")
    edit(
        fleet,
        WEB,
        "    dev:\n      autoscaling: {minReplicas: 1, maxReplicas: 2}",
        "    dev:\n      replicaz: 1",
    )
    got = {(f.position.line, f.field_path): f.message for f in findings(fleet)}
    secrets = line_of(fleet, WEB, "  secrets:")
    assert got == {
        (
            secrets + 2,
            "spec.secrets[0].env",
        ): "secret 'web-session': env 'SESSION_SIGNING_KEY' needs a key",
        (
            secrets + 3,
            "spec.secrets[1]",
        ): "secret 'web-tls': set exactly one of env (with key) and mountPath",
        (line_of(fleet, WEB, "    minReplicas: 2"), "spec.autoscaling"): (
            "replicas and autoscaling exclude each other: the autoscaler owns replicas"
        ),
        (line_of(fleet, WEB, "{minReplicas: 4"), "overrides.clusters.prod-eu.autoscaling"): (
            "replicas and autoscaling exclude each other: the autoscaler owns replicas"
        ),
        (line_of(fleet, WEB, "  ports:") + 4, "spec.ports[1].name"): (
            "port name 'http' is used twice (also ports[0])"
        ),
        (line_of(fleet, WEB, "replicaz"), "overrides.environments.dev"): (
            "unknown field 'replicaz' (did you mean 'replicas'?)"
        ),
    }


def test_a_list_error_points_at_the_item(fleet: Path) -> None:
    edit(
        fleet,
        "fleet.yaml",
        "    - name: staging\n      environment: staging",
        "    - name: dev\n      environment: staging",
    )
    (f,) = findings(fleet)
    lines = (fleet / "fleet.yaml").read_text(encoding="utf-8").splitlines()
    # environments[0] and clusters[0] are named dev too; the duplicate is clusters[1].
    second = [i + 1 for i, ln in enumerate(lines) if ln == "    - name: dev"][2]
    assert (f.position.line, f.position.column) == (second, 13)
    assert f.field_path == "spec.clusters[1].name"
    assert f.message == "cluster name 'dev' is used twice (also [0])"


def test_a_file_with_thousands_of_errors_reports_two_hundred_and_counts_the_rest() -> None:
    many = [Finding(Position("gen.yaml", i + 1, 1), "broken") for i in range(2_500)]
    err = ValidationError([*many, Finding(Position("other.yaml", 1, 1), "also")])
    assert len(err.findings) == 202
    assert err.findings[0].position.path == "gen.yaml"
    assert (
        Finding(Position("gen.yaml"), "and 2300 more problems in this file, not shown")
        in err.findings
    )

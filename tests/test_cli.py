"""The command line: exit codes, JSON output, GitHub annotations, schema freshness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import cli
from tests.helpers import FLEET, app_count, edit, line_of

REPO = FLEET.parent
WEB = "apps/storefront/web.yaml"
VALID = f"fleet acme is valid: 3 clusters, 3 teams, {app_count()} apps\n"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def broken(fleet: Path) -> Path:
    """The example fleet with a typo'd field and an untagged image in web.yaml."""
    edit(fleet, WEB, "  zoneSpread: true", "  zoneSpred: true")
    edit(fleet, WEB, "storefront-web:2.14.1", "storefront-web")
    return fleet


def test_validate_of_the_example_fleet_exits_0() -> None:
    code, out, _ = run("validate", str(FLEET))
    assert code == 0
    assert out == VALID


def test_validate_defaults_to_the_fleet_folder_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    assert run("validate")[0] == 0


def test_validate_lists_every_error_with_file_line_col_and_exits_1(broken: Path) -> None:
    code, out, err = run("validate", str(broken))
    assert code == 1 and out == ""
    typo = line_of(broken, WEB, "zoneSpred")
    # The fleet is given as an absolute path outside the current directory: so are the files.
    path = broken / WEB
    assert err.splitlines() == [
        f"{path}:8:10: error: spec.image: image 'ghcr.io/acme/storefront-web' has no tag or "
        "digest: pin a version (name:1.2.3) or a digest",
        f"{path}:{typo}:3: error: spec: unknown field 'zoneSpred' (did you mean 'zoneSpread'?)",
        "2 errors",
    ]


def test_validate_json_output_is_one_document(broken: Path) -> None:
    code, out, _ = run("validate", str(broken), "--output", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False
    assert [(e["file"], e["line"], e["field"]) for e in doc["errors"]] == [
        (str(broken / WEB), 8, "spec.image"),
        (str(broken / WEB), line_of(broken, WEB, "zoneSpred"), "spec"),
    ]


def test_validate_json_output_of_a_valid_fleet() -> None:
    code, out, _ = run("validate", str(FLEET), "-o", "json")
    assert (code, json.loads(out)) == (
        0,
        {
            "ok": True,
            "errors": [],
            "warnings": [],
            "clusters": 3,
            "teams": 3,
            "apps": app_count(),
        },
    )


def test_github_actions_get_annotations_relative_to_the_working_directory(
    broken: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(broken.parent)
    code, out, _ = run("validate", "fleet", env={"GITHUB_ACTIONS": "true"})
    assert code == 1
    typo = line_of(broken, WEB, "zoneSpred")
    assert out.splitlines() == [
        f"::error file=fleet/{WEB},line=8,col=10::spec.image: image "
        "'ghcr.io/acme/storefront-web' has no tag or digest: pin a version (name:1.2.3) or a digest",
        f"::error file=fleet/{WEB},line={typo},col=3::spec: unknown field 'zoneSpred' "
        "(did you mean 'zoneSpread'?)",
    ]


def test_github_annotations_keep_json_stdout_parseable(broken: Path) -> None:
    code, out, err = run("validate", str(broken), "-o", "json", env={"GITHUB_ACTIONS": "true"})
    assert code == 1
    assert len(json.loads(out)["errors"]) == 2
    assert err.count("::error file=") == 2


def test_no_annotations_outside_github_actions(broken: Path) -> None:
    _, out, err = run("validate", str(broken), env={"GITHUB_ACTIONS": ""})
    assert "::error" not in out + err


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "/no/such/fleet"],
        ["validate", "--output", "xml"],
        ["validate", "--no-such-flag"],
        ["schema"],
        ["schema", "--out", "a", "--check", "b"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args)[0] == 2


def test_validate_without_a_fleet_here_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run("validate")
    assert code == 2 and "no FLEET given" in err


def test_schema_out_then_check_passes(tmp_path: Path) -> None:
    code, out, _ = run("schema", "--out", str(tmp_path))
    from specc.schemas import kind_schemas

    assert code == 0 and out.startswith(f"wrote {len(kind_schemas())} schemas")
    assert run("schema", "--check", str(tmp_path))[0] == 0


def test_checked_in_schemas_are_fresh() -> None:
    assert run("schema", "--check", str(REPO / "schemas"))[0] == 0


def test_schema_check_fails_on_a_stale_or_missing_schema(tmp_path: Path) -> None:
    run("schema", "--out", str(tmp_path))
    stale = tmp_path / "service.json"
    stale.write_text(stale.read_text().replace('"replicas"', '"replicaCount"'))
    (tmp_path / "team.json").unlink()
    code, _, err = run("schema", "--check", str(tmp_path))
    assert code == 1
    assert (
        "service.json: error: stale or missing" in err
        and "team.json: error: stale or missing" in err
    )


def test_schema_check_fails_when_a_model_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from specc import schemas

    run("schema", "--out", str(tmp_path))
    real = schemas.kind_schemas

    def changed() -> dict[str, dict[str, object]]:
        out = real()
        out["team.json"]["properties"]["newField"] = {"type": "string"}
        return out

    monkeypatch.setattr(schemas, "kind_schemas", changed)
    code, _, err = run("schema", "--check", str(tmp_path))
    assert code == 1 and "team.json" in err


def test_generated_schemas_say_how_they_were_made(tmp_path: Path) -> None:
    run("schema", "--out", str(tmp_path))
    doc = json.loads((tmp_path / "fleet.json").read_text())
    assert "specc schema --out" in doc["$comment"]


def test_fleet_files_point_their_modeline_at_their_kinds_schema() -> None:
    for path in sorted(FLEET.rglob("*.yaml")):
        if "crds" in path.parts:
            continue
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema="), path
        target = (path.parent / first.split("$schema=")[1]).resolve()
        assert target.is_file(), path
        assert target.parent == REPO / "schemas"


def test_python_dash_m_specc_validate_runs_as_a_real_process(broken: Path) -> None:
    env = {**os.environ, "GITHUB_ACTIONS": "false"}
    ok = subprocess.run(
        [sys.executable, "-m", "specc", "validate", str(FLEET)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (ok.returncode, ok.stdout) == (0, VALID)
    bad = subprocess.run(
        [sys.executable, "-m", "specc", "validate", str(broken)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert bad.returncode == 1
    assert f"{broken / WEB}:8:10: error: spec.image" in bad.stderr

"""`-o json` on every command, errors included, numbers as numbers; `specc version`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from specc import DISTRIBUTION, __version__
from specc.cli import cli
from specc.report import status_json
from specc.testing import ApiServer
from tests.helpers import FLEET, edit


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def test_version_prints_the_version_and_the_distribution() -> None:
    result = run("version")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"specc {__version__} ({DISTRIBUTION}), Python ")
    data = json.loads(run("version", "-o", "json").stdout)
    assert data["version"] == __version__ and data["distribution"] == DISTRIBUTION
    assert data["installed"] == __version__  # the distribution is installed by this name
    assert "1.33" in data["kubernetesVersions"]


def test_rbac_prints_json_when_asked() -> None:
    role = json.loads(run("rbac", str(FLEET), "-o", "json").stdout)
    assert (role["kind"], role["metadata"]["name"]) == ("ClusterRole", "specc-agent")
    assert all(isinstance(r["verbs"], list) for r in role["rules"])


def test_rbac_of_a_broken_fleet_prints_its_errors_as_json(fleet: Path) -> None:
    edit(fleet, "apps/storefront/web.yaml", "storefront-web:2.14.1", "storefront-web")
    result = run("rbac", str(fleet), "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["errors"][0]["line"] == 8


def test_render_json_without_a_cluster_is_a_json_error_on_stdout() -> None:
    result = run("render", str(FLEET), "-o", "json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "add --cluster" in doc["errors"][0]["message"]


def test_explain_of_a_missing_object_is_a_json_error_on_stdout() -> None:
    result = run("explain", "Deployment/nowhere", str(FLEET), "--cluster", "dev", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "no such object" in doc["errors"][0]["message"]


def test_schema_check_reports_in_json(tmp_path: Path) -> None:
    result = run("schema", "--check", str(tmp_path), "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["stale"]
    assert run("schema", "--out", str(tmp_path), "-o", "json").exit_code == 0
    assert json.loads(run("schema", "--check", str(tmp_path), "-o", "json").stdout) == {
        "ok": True,
        "stale": [],
    }


def test_the_recorded_status_has_numbers_as_numbers() -> None:
    assert status_json(
        {
            "objects": "41",
            "pruneBudget": "0.25",
            "lastCounts": "created=40,unchanged=1",
            "lastAppliedCommit": "1234567",
        }
    ) == {
        "objects": 41,
        "pruneBudget": 0.25,
        "lastCounts": {"created": 40, "unchanged": 1},
        "lastAppliedCommit": "1234567",
    }
    # What another writer put there stays as it is.
    assert status_json({"objects": "many", "lastCounts": "x"}) == {
        "objects": "many",
        "lastCounts": "x",
    }


@pytest.mark.skipif(bool(os.environ.get("SPECC_TEST_KUBECONFIG")), reason="needs the double")
def test_status_json_of_a_synced_cluster_has_numbers(api: ApiServer, fleet: Path) -> None:
    (fleet / "apps/storefront/monitoring.yaml").unlink(missing_ok=True)
    kube = ["--kubeconfig", str(api.kubeconfig_path), "--context", "specc-double"]
    assert run("sync", str(fleet), "--cluster", "dev", *kube).exit_code == 0
    result = run("status", str(fleet), "--cluster", "dev", *kube, "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data["objects"], int) and data["objects"] > 0
    assert isinstance(data["lastCounts"]["created"], int)


def test_a_cluster_command_without_the_kubernetes_client_says_how_to_install_it(
    tmp_path: Path,
) -> None:
    # A `kubernetes` that cannot be imported, as in an install without the cluster extra.
    blocker = tmp_path / "kubernetes"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError(name='kubernetes')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "KUBECONFIG": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, "-m", "specc", "status", str(FLEET), "--cluster", "dev"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"pip install '{DISTRIBUTION}[cluster]'" in done.stderr
    assert "Traceback" not in done.stderr

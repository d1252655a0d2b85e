"""The strict Kubernetes schemas specc bundles: the copies kubernetes-validate's, and a
base install (no `cluster`/`test` extras) validates a fleet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bundled_schemas_are_kubernetes_validates() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "bundle_kube_schemas.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_fleet_version_is_bundled() -> None:
    from specc.check.kubernetes import supported_versions
    from specc.spec.fleet import SUPPORTED_VERSIONS

    assert set(SUPPORTED_VERSIONS) <= set(supported_versions())


_WITHOUT_EXTRAS = """
import sys
# What the base install lacks: importing any of them fails as if not installed.
for name in ("kubernetes", "kubernetes_validate", "prometheus_client", "google.protobuf",
             "deepdiff", "jsonschema"):
    sys.modules[name] = None
from specc.cli import main
sys.argv = ["specc", "validate", sys.argv[1]]
main()
"""


def test_validate_needs_no_extra(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _WITHOUT_EXTRAS, str(ROOT / "fleet")],
        capture_output=True,
        text=True,
        env={"SPECC_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "is valid" in run.stdout


def test_agent_without_the_cluster_extra_names_it(tmp_path: Path) -> None:
    code = _WITHOUT_EXTRAS.replace('"validate", sys.argv[1]', '"agent", "--help"')
    run = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "fleet")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode in (0, 2), run.stderr
    assert "Traceback" not in run.stderr

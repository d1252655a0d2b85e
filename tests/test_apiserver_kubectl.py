"""kubectl against the API server double (or ``$SPECC_TEST_KUBECONFIG``'s cluster).

``/usr/bin/kubectl`` here dispatches to kubectl 1.27–1.33 by the server's minor version,
so the double is also driven while reporting v1.27 (older discovery and OpenAPI v2).
Skipped when kubectl is not on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from specc.testing import ApiServer
from specc.testing.pytest_plugin import KubeTarget

pytestmark = [
    pytest.mark.kubectl,
    pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH"),
]

MANIFEST = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
  labels: {{app: demo}}
data:
  level: "{level}"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: demo}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: app
        image: registry.example/web:1.2.3
        resources: {{requests: {{cpu: "0.5"}}}}
"""


def _configmap(name: str) -> str:
    # `kubectl create -f` sends JSON; `kubectl create configmap` would send protobuf,
    # which the double does not speak.
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{x: '1'}}\n"


class Kubectl:
    """Runs kubectl with a kubeconfig and namespace."""

    def __init__(self, kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.namespace = namespace
        self.tmp_path = tmp_path

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "-n", self.namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
            check=False,
        )

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def manifest(self, level: str) -> str:
        path = self.tmp_path / f"manifest-{level}.yaml"
        path.write_text(MANIFEST.format(level=level))
        return str(path)

    def get_json(self, *args: str) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.ok("get", *args, "-o", "json"))
        return document


@pytest.fixture
def kubectl(kube: KubeTarget, tmp_path: Path) -> Kubectl:
    return Kubectl(kube.kubeconfig_path, kube.namespace, tmp_path)


@pytest.fixture
def kubectl_127(tmp_path: Path) -> Iterator[Kubectl]:
    with ApiServer(version="v1.27.9") as server:
        namespace = f"specc-test-{uuid.uuid4().hex[:8]}"
        from kubernetes import client

        client.CoreV1Api(server.api_client()).create_namespace({"metadata": {"name": namespace}})
        yield Kubectl(server.kubeconfig_path, namespace, tmp_path)


def test_server_side_apply_creates_then_leaves_objects_unchanged(kubectl: Kubectl) -> None:
    out = kubectl.ok("apply", "--server-side", "-f", kubectl.manifest("info"))
    assert "configmap/demo serverside-applied" in out
    assert "deployment.apps/web serverside-applied" in out
    first = kubectl.get_json("configmap", "demo", "--show-managed-fields")
    kubectl.ok("apply", "--server-side", "-f", kubectl.manifest("info"))
    second = kubectl.get_json("configmap", "demo", "--show-managed-fields")
    assert first["metadata"] == second["metadata"]  # type: ignore[comparison-overlap]
    managed = second["metadata"]["managedFields"]  # type: ignore[index]
    assert [(e["manager"], e["operation"]) for e in managed] == [("kubectl", "Apply")]
    web = kubectl.get_json("deployment", "web")
    container = web["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["resources"]["requests"]["cpu"] == "500m"
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_server_side_apply_validates_fields_by_default(kubectl: Kubectl) -> None:
    bad = kubectl.tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad}\nbogus: 1\n")
    result = kubectl.run("apply", "--server-side", "-f", str(bad))
    assert result.returncode != 0
    assert "bogus" in result.stderr
    assert kubectl.run("get", "configmap", "bad").returncode != 0


def test_server_dry_run_reports_but_persists_nothing(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--server-side", "-f", kubectl.manifest("info"))
    out = kubectl.ok("apply", "--server-side", "--dry-run=server", "-f", kubectl.manifest("debug"))
    assert "serverside-applied (server dry run)" in out
    live = kubectl.get_json("configmap", "demo")
    assert live["data"] == {"level": "info"}


def test_get_with_label_selector_lists_matching_objects(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--server-side", "-f", kubectl.manifest("info"))
    kubectl.ok("create", "-f", "-", stdin=_configmap("other"))
    names = kubectl.ok("get", "configmaps,deployments", "-l", "app=demo", "-o", "name").split()
    assert names == ["configmap/demo", "deployment.apps/web"]
    table = kubectl.ok("get", "configmaps", "-l", "app in (demo)")
    assert "demo" in table and "other" not in table


def test_server_side_diff_shows_only_real_changes(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--server-side", "-f", kubectl.manifest("info"))
    same = kubectl.run("diff", "--server-side", "-f", kubectl.manifest("info"))
    assert same.returncode == 0, same.stdout + same.stderr
    changed = kubectl.run("diff", "--server-side", "-f", kubectl.manifest("debug"))
    assert changed.returncode == 1, changed.stderr
    assert "+  level: debug" in changed.stdout
    assert "-  level: info" in changed.stdout


def test_patch_merge_records_an_update_manager(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--server-side", "-f", kubectl.manifest("info"))
    kubectl.ok("patch", "configmap", "demo", "--type", "merge", "-p", '{"data":{"extra":"1"}}')
    live = kubectl.get_json("configmap", "demo", "--show-managed-fields")
    assert live["data"] == {"level": "info", "extra": "1"}
    managed = {e["manager"]: e for e in live["metadata"]["managedFields"]}  # type: ignore[index]
    assert managed["kubectl-patch"]["operation"] == "Update"
    assert managed["kubectl-patch"]["fieldsV1"] == {"f:data": {"f:extra": {}}}


def test_delete_by_label_removes_matching_objects(kubectl: Kubectl) -> None:
    kubectl.ok("apply", "--server-side", "-f", kubectl.manifest("info"))
    kubectl.ok("create", "-f", "-", stdin=_configmap("keep"))
    out = kubectl.ok("delete", "configmaps,deployments", "-l", "app=demo")
    assert 'configmap "demo" deleted' in out
    assert 'deployment.apps "web" deleted' in out
    left = kubectl.ok("get", "configmaps,deployments", "-o", "name").split()
    # A real cluster adds kube-root-ca.crt to every namespace.
    assert [n for n in left if n != "configmap/kube-root-ca.crt"] == ["configmap/keep"]
    missing = kubectl.run("delete", "configmap", "demo")
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_kubectl_1_27_drives_the_double_reporting_v1_27(kubectl_127: Kubectl) -> None:
    assert "v1.27" in kubectl_127.ok("version", "-o", "json")
    out = kubectl_127.ok("apply", "--server-side", "-f", kubectl_127.manifest("info"))
    assert "configmap/demo serverside-applied" in out
    dry = kubectl_127.ok(
        "apply", "--server-side", "--dry-run=server", "-f", kubectl_127.manifest("debug")
    )
    assert "server dry run" in dry
    assert kubectl_127.ok("get", "cm", "-l", "app=demo", "-o", "name").split() == ["configmap/demo"]
    kubectl_127.ok("delete", "cm", "-l", "app=demo")
    assert kubectl_127.ok("get", "cm", "-o", "name").strip() == ""

"""kubectl against the API server double (or ``$SPECC_TEST_KUBECONFIG``'s cluster).

``/usr/bin/kubectl`` here dispatches to kubectl 1.27–1.33 by the server's minor version,
so the double is also driven while reporting v1.27 (older discovery and OpenAPI v2).
The interop matrix runs every versioned binary (``kubectl.1.*``) itself: kubectl 1.32
and later send ``kubectl create`` bodies as Kubernetes protobuf, older ones as JSON.
Skipped when kubectl is not on PATH.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from specc.testing import ApiServer
from specc.testing import protobuf as pb
from specc.testing.api import Request, Response
from specc.testing.apiserver import Router
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
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{x: '1'}}\n"


class Kubectl:
    """Runs kubectl (the dispatcher, or one versioned binary) with a kubeconfig and namespace."""

    def __init__(
        self, kubeconfig: Path, namespace: str, tmp_path: Path, binary: str = "kubectl"
    ) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.namespace = namespace
        self.tmp_path = tmp_path
        self.binary = binary

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-n", self.namespace, *args],
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

    def get_json(self, *args: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.ok("get", *args, "-o", "json"))
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
    assert first["metadata"] == second["metadata"]
    managed = second["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in managed] == [("kubectl", "Apply")]
    web = kubectl.get_json("deployment", "web")
    container = web["spec"]["template"]["spec"]["containers"][0]
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
    managed = {e["manager"]: e for e in live["metadata"]["managedFields"]}
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


# ------------------------------------------------------------------ every kubectl version

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")
KUBECTLS = sorted(KUBECTL_DIR.glob("kubectl.1.*"), key=lambda p: int(p.suffix[1:]))
#: kubectl 1.32 is the first whose typed clients (``kubectl create <kind>``) send protobuf.
FIRST_PROTOBUF_MINOR = 32


def _minor(binary: Path) -> int:
    return int(binary.suffix[1:])


@pytest.mark.parametrize("minor", [_minor(b) for b in KUBECTLS])
def test_create_namespace_then_configmap_works_with_every_kubectl(
    minor: int, tmp_path: Path
) -> None:
    # The dispatcher on PATH picks kubectl 1.<minor> from the version the double reports.
    with ApiServer(version=f"v1.{minor}.0") as server:
        kubectl = Kubectl(server.kubeconfig_path, "x", tmp_path)
        kubectl.ok("create", "namespace", "x")
        kubectl.ok("create", "configmap", "y", "-n", "x", "--from-literal=k=v")
        assert kubectl.get_json("configmap", "y")["data"] == {"k": "v"}
        creates = [r for r in server.requests if r.verb == "create" and r.status == 201]
        assert all(f"/v1.{minor}." in r.user_agent for r in creates[-2:])
        sent = "application/json" if minor < FIRST_PROTOBUF_MINOR else pb.MEDIA_TYPE
        assert [(r.resource, r.content_type) for r in creates[-2:]] == [
            ("namespaces", sent),
            ("configmaps", sent),
        ]


EDITOR = """#!/bin/sh
sed -i 's/level: debug/level: edited/' "$1"
"""


@pytest.mark.parametrize("binary", KUBECTLS, ids=lambda b: b.name)
def test_kubectl_interop_matrix(kube: KubeTarget, tmp_path: Path, binary: Path) -> None:
    """create (typed: protobuf from 1.32), replace, label, annotate, scale, patch, edit, delete."""
    namespace = f"kx{_minor(binary)}-{uuid.uuid4().hex[:6]}"
    kubectl = Kubectl(kube.kubeconfig_path, namespace, tmp_path, str(binary))
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01binary\xff")
    kubectl.ok("create", "namespace", namespace)
    try:
        kubectl.ok(
            "create", "configmap", "settings", "--from-literal=level=info", f"--from-file={blob}"
        )
        kubectl.ok("create", "secret", "generic", "creds", "--from-literal=password=hunter2")
        kubectl.ok(
            "create", "deployment", "web", "--image=registry.example/web:1.2.3",
            "--replicas=0", "--port=8080",
        )  # fmt: skip
        settings = kubectl.get_json("configmap", "settings")
        assert settings["data"] == {"level": "info"}
        assert base64.b64decode(settings["binaryData"]["blob.bin"]) == blob.read_bytes()
        creds = kubectl.get_json("secret", "creds")
        assert creds["type"] == "Opaque"
        assert base64.b64decode(creds["data"]["password"]) == b"hunter2"
        web = kubectl.get_json("deployment", "web")
        assert web["spec"]["replicas"] == 0  # a pointer's zero survives protobuf
        (container,) = web["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example/web:1.2.3"
        assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]

        settings["data"].update(level="debug", replaced="1")
        kubectl.ok("replace", "-f", "-", stdin=json.dumps(settings))
        kubectl.ok("label", "configmap", "settings", "tier=backend")
        kubectl.ok("annotate", "configmap", "settings", "owner=team-a")
        kubectl.ok("scale", "deployment", "web", "--replicas=2")
        kubectl.ok("patch", "configmap", "settings", "--type=merge", "-p", '{"data":{"merge":"1"}}')
        add = '[{"op":"add","path":"/data/json","value":"1"}]'
        kubectl.ok("patch", "configmap", "settings", "--type=json", "-p", add)
        image = '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.example/web:1.2.4"}]}}}}'
        kubectl.ok("patch", "deployment", "web", "--type=strategic", "-p", image)
        editor = tmp_path / "editor.sh"
        editor.write_text(EDITOR)
        editor.chmod(0o755)
        kubectl.env["KUBE_EDITOR"] = str(editor)
        kubectl.ok("edit", "configmap", "settings")

        settings = kubectl.get_json("configmap", "settings", "--show-managed-fields")
        assert settings["data"] == {"level": "edited", "replaced": "1", "merge": "1", "json": "1"}
        assert settings["metadata"]["labels"] == {"tier": "backend"}
        assert settings["metadata"]["annotations"]["owner"] == "team-a"
        managers = {e["manager"] for e in settings["metadata"]["managedFields"]}
        assert managers >= {
            "kubectl-create", "kubectl-replace", "kubectl-label", "kubectl-annotate",
            "kubectl-patch", "kubectl-edit",
        }  # fmt: skip
        web = kubectl.get_json("deployment", "web")
        assert web["spec"]["replicas"] == 2
        (container,) = web["spec"]["template"]["spec"]["containers"]
        assert container["image"] == "registry.example/web:1.2.4"

        assert 'configmap "settings" deleted' in kubectl.ok("delete", "configmap", "settings")
        kubectl.ok("delete", "secret,deployment", "--all")
        missing = kubectl.run("get", "configmap", "settings")
        assert missing.returncode != 0 and "NotFound" in missing.stderr
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false")


class _BodyRecorder(Router):
    """The double's router, keeping each POST body with its media type."""

    bodies: list[tuple[str, str, bytes]]

    def route(self, request: Request) -> tuple[Response, str, str, str, str]:
        if request.method == "POST":
            self.bodies.append((request.path, request.content_type, request.body))
        return super().route(request)


def _sent_bodies(binary: Path, commands: list[str], tmp_path: Path) -> list[tuple[str, str, bytes]]:
    with ApiServer(version=f"v1.{_minor(binary)}.0") as server:
        recorder = _BodyRecorder(server.cluster, server.router.address)
        recorder.bodies = []
        server.router = recorder
        kubectl = Kubectl(server.kubeconfig_path, "default", tmp_path, str(binary))
        for command in commands:
            kubectl.ok(*shlex.split(command))
        return recorder.bodies


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_no_nulls(v) for v in value]
    return value


GENERATORS = [
    "create namespace team-a",
    "create configmap settings --from-literal=a=b --from-file={blob}",
    "create secret generic creds --from-literal=password=hunter2",
    "create secret docker-registry pull --docker-server=r.example --docker-username=u --docker-password=p",
    "create deployment web --image=nginx:1 --replicas=0 --port=8080",
    "create service clusterip web --tcp=80:8080",
    "create service nodeport node --tcp=80:8080 --node-port=30080",
    "create service externalname db --external-name=db.example",
    "create serviceaccount robot",
    "create role reader --verb=get,list --resource=pods,configmaps",
    "create clusterrole aggregate --aggregation-rule=rbac.example/aggregate=true",
    "create clusterrole health --verb=get --non-resource-url=/healthz",
    "create rolebinding readers --role=reader --user=alice --serviceaccount=default:robot",
    "create clusterrolebinding devs --clusterrole=health --group=devs",
    "create quota compute --hard=cpu=1,memory=1Gi,pods=10",
    "create priorityclass high --value=1000 --description=x --preemption-policy=Never",
    "create poddisruptionbudget web --selector=app=web --min-available=1",
    "create ingress web --rule=foo.example/bar=web:80,tls=cert",
    "create cronjob tick --image=busybox --schedule='*/5 * * * *' -- echo hi",
    "create job once --image=busybox -- echo hi",
]


def test_protobuf_bodies_decode_to_the_json_an_older_kubectl_sends(tmp_path: Path) -> None:
    json_kubectls = [b for b in KUBECTLS if _minor(b) < FIRST_PROTOBUF_MINOR]
    protobuf_kubectls = [b for b in KUBECTLS if _minor(b) >= FIRST_PROTOBUF_MINOR]
    if not json_kubectls or not protobuf_kubectls:
        pytest.skip("needs a kubectl before 1.32 and one from 1.32 on")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01binary\xff")
    commands = [c.format(blob=blob) for c in GENERATORS]
    as_json = _sent_bodies(json_kubectls[-1], commands, tmp_path)
    as_protobuf = _sent_bodies(protobuf_kubectls[-1], commands, tmp_path)
    assert len(as_json) == len(as_protobuf) == len(commands)
    for (path, json_type, json_body), (same_path, protobuf_type, protobuf_body) in zip(
        as_json, as_protobuf, strict=True
    ):
        assert (path, json_type, protobuf_type) == (same_path, "application/json", pb.MEDIA_TYPE)
        expected = json.loads(json_body)
        parts = path.split("/")
        group, version = ("", parts[2]) if parts[1] == "api" else (parts[2], parts[3])
        decoded = pb.decode(protobuf_body, group, version, expected["kind"])
        assert _no_nulls(decoded) == _no_nulls(expected), path

"""Request bodies in every encoding a real API server takes: JSON, YAML, Kubernetes protobuf.

The protobuf decoder is checked three ways: the shipped schema against itself and the
double's resource table (here), Go's JSON shapes on messages built with the protobuf
library (here), and real kubectl protobuf bodies against the JSON an older kubectl sends
for the same command (tests/test_apiserver_kubectl.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st

from specc.testing import protobuf as pb
from specc.testing.pytest_plugin import KubeTarget
from specc.testing.resources import BUILTIN_RESOURCES

ROOT = Path(__file__).resolve().parent.parent
DATA = resources.files("specc") / "data" / "kubernetes-protobuf"
CORE = "k8s.io.api.core.v1."
META = "k8s.io.apimachinery.pkg.apis.meta.v1."
CRD = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1."


def _new(name: str) -> Any:
    return pb.schema().message_class(name)()


def _body(api_version: str, kind: str, message: Any) -> bytes:
    envelope = _new("k8s.io.apimachinery.pkg.runtime.Unknown")
    envelope.typeMeta.apiVersion = api_version
    envelope.typeMeta.kind = kind
    envelope.raw = message.SerializeToString()
    return pb.MAGIC + envelope.SerializeToString()


def _decode(api_version: str, kind: str, message: Any) -> dict[str, Any]:
    group, _, version = api_version.rpartition("/")
    return pb.decode(_body(api_version, kind, message), group, version, kind)


# ------------------------------------------------------------------ the shipped schema


def test_shapes_belong_to_the_shipped_descriptors() -> None:
    shapes = json.loads((DATA / "shapes.json").read_text())
    digest = hashlib.sha256((DATA / "descriptors.binpb").read_bytes()).hexdigest()
    assert shapes["descriptorsSha256"] == digest
    assert set(shapes["modules"].values()) == {"v0.36.3"}
    assert "tools/gen_kube_protobuf.py" in shapes["generated"]


def test_every_go_field_is_a_proto_field_and_back() -> None:
    kube = pb.schema()
    for name, fields in kube.shapes.items():
        descriptor = kube.pool.FindMessageTypeByName(name)
        assert {f.number for f in descriptor.fields} == set(fields), name


def test_every_type_with_its_own_json_has_a_converter() -> None:
    kube = pb.schema()
    assert {name.rsplit(".", 1)[1] for name in kube.custom} == set(pb._CUSTOM)
    for name in kube.lists:
        fields = kube.pool.FindMessageTypeByName(name).fields
        assert [(f.name, f.is_repeated) for f in fields] == [("items", True)], name


@pytest.mark.parametrize("rt", BUILTIN_RESOURCES, ids=lambda rt: f"{rt.group_version}/{rt.kind}")
def test_every_builtin_kind_of_the_double_decodes(rt: Any) -> None:
    name = pb.schema().kinds[rt.group_version][rt.kind]
    message = _new(name)
    message.metadata.name = "x"
    assert _decode(rt.group_version, rt.kind, message)["metadata"] == {"name": "x"}


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("go") is None, reason="regenerating needs Go")
def test_shipped_schema_is_what_the_generator_makes(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "tools" / "kube-protobuf"), str(tmp_path)], check=True)
    shipped = json.loads((DATA / "shapes.json").read_text())
    fresh = json.loads((tmp_path / "shapes.json").read_text())
    for key in ("messages", "customJSON", "listWrappers", "kinds", "protoFiles", "modules"):
        assert fresh[key] == shipped[key], key
    # protoc versions may order or annotate descriptors differently; compare the wire.
    regenerated = pb.Schema((tmp_path / "descriptors.binpb").read_bytes(), fresh)
    for name in shipped["messages"]:
        old = pb.schema().pool.FindMessageTypeByName(name)
        new = regenerated.pool.FindMessageTypeByName(name)
        assert [(f.name, f.number, f.type, f.is_repeated) for f in old.fields] == [
            (f.name, f.number, f.type, f.is_repeated) for f in new.fields
        ], name


# ------------------------------------------------------------------ Go's JSON shapes


def test_pointer_zero_values_stay_and_plain_zero_values_go() -> None:
    deployment = _new("k8s.io.api.apps.v1.Deployment")
    deployment.metadata.name = "web"
    deployment.metadata.generateName = ""  # non-pointer, omitempty: left out
    deployment.spec.replicas = 0  # *int32: zero is a value
    deployment.spec.minReadySeconds = 0  # int32, omitempty: left out
    deployment.spec.paused = False
    pod = deployment.spec.template.spec
    container = pod.containers.add()
    container.name = "app"
    container.image = "registry.example/app:1"
    container.securityContext.runAsUser = 0
    container.securityContext.readOnlyRootFilesystem = False
    decoded = _decode("apps/v1", "Deployment", deployment)
    assert decoded["metadata"] == {"name": "web"}
    assert decoded["spec"]["replicas"] == 0
    assert "minReadySeconds" not in decoded["spec"] and "paused" not in decoded["spec"]
    assert decoded["spec"]["template"]["spec"]["containers"] == [
        {
            "name": "app",
            "image": "registry.example/app:1",
            "resources": {},
            "securityContext": {"runAsUser": 0, "readOnlyRootFilesystem": False},
        }
    ]
    # Non-pointer structs are always written, as encoding/json writes them.
    assert decoded["status"] == {} and decoded["spec"]["strategy"] == {}


def test_bytes_are_base64_and_maps_keep_their_keys() -> None:
    secret = _new(CORE + "Secret")
    secret.metadata.name = "s"
    secret.data["password"] = b"\x00s3cr3t\xff"
    secret.type = "Opaque"
    config = _new(CORE + "ConfigMap")
    config.metadata.name = "c"
    config.data["a.txt"] = "hello"
    config.binaryData["blob"] = b"\x01\x02"
    config.immutable = False
    assert _decode("v1", "Secret", secret)["data"] == {
        "password": base64.b64encode(b"\x00s3cr3t\xff").decode()
    }
    decoded = _decode("v1", "ConfigMap", config)
    assert decoded["data"] == {"a.txt": "hello"}
    assert decoded["binaryData"] == {"blob": "AQI="}
    assert decoded["immutable"] is False


def test_quantities_int_or_strings_and_times_marshal_like_go() -> None:
    deployment = _new("k8s.io.api.apps.v1.Deployment")
    deployment.metadata.name = "web"
    deployment.metadata.creationTimestamp.seconds = 1700000000
    rolling = deployment.spec.strategy.rollingUpdate
    rolling.maxSurge.type = 1
    rolling.maxSurge.strVal = "25%"
    rolling.maxUnavailable.type = 0
    rolling.maxUnavailable.intVal = 0
    container = deployment.spec.template.spec.containers.add()
    container.name = "app"
    container.resources.requests["cpu"].string = "500m"
    container.resources.limits["memory"].string = "1Gi"
    decoded = _decode("apps/v1", "Deployment", deployment)
    assert decoded["metadata"]["creationTimestamp"] == "2023-11-14T22:13:20Z"
    assert decoded["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    resources_ = decoded["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources_ == {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}
    # The zero time is omitzero in ObjectMeta and null (dropped later) elsewhere.
    template_meta = decoded["spec"]["template"]["metadata"]
    assert "creationTimestamp" not in template_meta


def test_micro_time_keeps_microseconds() -> None:
    lease = _new("k8s.io.api.coordination.v1.Lease")
    lease.metadata.name = "leader"
    lease.spec.holderIdentity = "agent-0"
    lease.spec.renewTime.seconds = 1700000000
    lease.spec.renewTime.nanos = 123456789
    lease.spec.leaseDurationSeconds = 15
    spec = _decode("coordination.k8s.io/v1", "Lease", lease)["spec"]
    assert spec == {
        "holderIdentity": "agent-0",
        "leaseDurationSeconds": 15,
        "renewTime": "2023-11-14T22:13:20.123456Z",
    }


def test_embedded_structs_are_inlined_and_raw_json_is_embedded() -> None:
    pod = _new(CORE + "Pod")
    pod.metadata.name = "p"
    container = pod.spec.containers.add()
    container.name = "app"
    source = container.envFrom.add()
    source.configMapRef.localObjectReference.name = "settings"
    source.configMapRef.optional = True
    entry = pod.metadata.managedFields.add()
    entry.manager = "kubectl"
    entry.operation = "Update"
    entry.fieldsType = "FieldsV1"
    entry.fieldsV1.Raw = b'{"f:spec":{}}'
    decoded = _decode("v1", "Pod", pod)
    env_from = decoded["spec"]["containers"][0]["envFrom"]
    assert env_from == [{"configMapRef": {"name": "settings", "optional": True}}]
    assert decoded["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {}},
        }
    ]
    revision = _new("k8s.io.api.apps.v1.ControllerRevision")
    revision.metadata.name = "r"
    revision.data.raw = b'{"spec":{"replicas":2}}'
    revision.revision = 3
    decoded = _decode("apps/v1", "ControllerRevision", revision)
    assert decoded["data"] == {"spec": {"replicas": 2}} and decoded["revision"] == 3


def test_crd_schemas_marshal_their_either_or_types() -> None:
    crd = _new(CRD + "CustomResourceDefinition")
    crd.metadata.name = "widgets.example.com"
    crd.spec.group = "example.com"
    crd.spec.names.plural = "widgets"
    crd.spec.names.kind = "Widget"
    crd.spec.scope = "Namespaced"
    version = crd.spec.versions.add()
    version.name = "v1"
    version.served = True
    version.storage = False
    root = version.schema.openAPIV3Schema
    root.type = "object"
    size = root.properties["size"]
    size.type = "integer"
    size.default.raw = b"3"
    size.minimum = 1.0
    mode = root.properties["mode"]
    mode.type = "string"
    mode.enum.add().raw = b'"fast"'
    tags = root.properties["tags"]
    tags.type = "array"
    tags.items.schema.type = "string"
    free = root.properties["free"]
    free.type = "object"
    free.xKubernetesPreserveUnknownFields = True
    free.additionalProperties.allows = False
    labels = root.properties["labels"]
    labels.type = "object"
    labels.additionalProperties.schema.type = "string"
    decoded = _decode("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd)
    served = decoded["spec"]["versions"][0]
    assert served["served"] is True and served["storage"] is False
    assert served["schema"]["openAPIV3Schema"] == {
        "type": "object",
        "properties": {
            "size": {"type": "integer", "default": 3, "minimum": 1},
            "mode": {"type": "string", "enum": ["fast"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "free": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "additionalProperties": False,
            },
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }


def test_named_slice_types_are_lists() -> None:
    review = _new("k8s.io.api.authorization.v1.SubjectAccessReview")
    review.spec.user = "alice"
    review.spec.extra["scopes"].items.extend(["read", "write"])
    review.spec.resourceAttributes.verb = "get"
    spec = _decode("authorization.k8s.io/v1", "SubjectAccessReview", review)["spec"]
    assert spec["extra"] == {"scopes": ["read", "write"]}
    assert spec["resourceAttributes"] == {"verb": "get"}


def test_an_envelope_without_type_meta_takes_the_paths_kind() -> None:
    config = _new(CORE + "ConfigMap")
    config.metadata.name = "c"
    decoded = pb.decode(_body("", "", config), "", "v1", "ConfigMap")
    assert decoded["kind"] == "ConfigMap" and decoded["apiVersion"] == "v1"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"apiVersion: v1\n",
            "the object provided is unrecognized (must be of type ConfigMap): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]",
        ),
        (pb.MAGIC + b"\n\xff", "the object provided is unrecognized (must be of type ConfigMap): "),
        (
            _body("v1", "Bogus", _new(CORE + "ConfigMap")),
            'Bogus in version "v1" cannot be handled as a ConfigMap: no kind "Bogus" is registered for version "v1"',
        ),
        (
            _body("v1", "Secret", _new(CORE + "Secret")),
            'Secret in version "v1" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion',
        ),
        (
            pb.MAGIC + b"\n\x0f\n\x02v1\x12\tConfigMap\x12\x03\xff\xff\xff",
            'ConfigMap in version "v1" cannot be handled as a ConfigMap: ',
        ),
    ],
    ids=["not protobuf", "broken envelope", "unknown kind", "other kind", "broken message"],
)
def test_bodies_that_are_not_the_paths_kind_are_refused_like_the_real_server(
    body: bytes, message: str
) -> None:
    with pytest.raises(pb.ProtobufError) as refused:
        pb.decode(body, "", "v1", "ConfigMap")
    assert str(refused.value).startswith(message)


# ------------------------------------------------------------------ over HTTP


def _send(
    kube: KubeTarget, method: str, path: str, body: bytes, content_type: str | None
) -> tuple[int, dict[str, Any]]:
    """Send raw bytes with the cluster's credentials (the client would re-encode them)."""
    config = kube.api_client().configuration
    headers = {a["key"]: a["value"] for a in config.auth_settings().values() if a["in"] == "header"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    pool = urllib3.PoolManager(
        cert_reqs="CERT_REQUIRED" if config.verify_ssl else "CERT_NONE",
        ca_certs=config.ssl_ca_cert,
        cert_file=config.cert_file,
        key_file=config.key_file,
    )
    answer = pool.request(method, config.host + path, body=body, headers=headers, timeout=30)
    if not answer.headers.get("Content-Type", "").startswith("application/json"):
        # A CRD's group not yet registered: the real server's mux answers a text/plain
        # "404 page not found", not a Status, while a test waits for it to be served.
        return answer.status, {"text": answer.data.decode(errors="replace")}
    return answer.status, json.loads(answer.data)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (
            "application/json",
            b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}',
        ),
        (None, b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"k":"v"}}'),
        (
            "application/yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {k: v}\n",
        ),
        ("application/vnd.kubernetes.protobuf", b""),
    ],
    ids=["json", "no media type", "yaml", "protobuf"],
)
def test_create_and_replace_take_every_encoding_the_real_server_takes(
    kube: KubeTarget, content_type: str | None, body: bytes
) -> None:
    if content_type == pb.MEDIA_TYPE:
        config = _new(CORE + "ConfigMap")
        config.metadata.name = "c"
        config.data["k"] = "v"
        body = _body("v1", "ConfigMap", config)
    path = f"/api/v1/namespaces/{kube.namespace}/configmaps"
    status, created = _send(kube, "POST", path, body, content_type)
    assert status == 201, created
    assert created["data"] == {"k": "v"} and created["metadata"]["name"] == "c"
    status, replaced = _send(kube, "PUT", f"{path}/c", body, content_type)
    assert status == 200, replaced
    assert replaced["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_other_media_types_are_415_with_the_real_servers_list(kube: KubeTarget) -> None:
    path = f"/api/v1/namespaces/{kube.namespace}/configmaps"
    status, answer = _send(kube, "POST", path, b"x", "text/plain")
    assert status == 415
    assert answer["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json, application/yaml, application/vnd.kubernetes.protobuf"
    )


def test_a_protobuf_body_of_another_kind_is_400(kube: KubeTarget) -> None:
    secret = _new(CORE + "Secret")
    secret.metadata.name = "s"
    path = f"/api/v1/namespaces/{kube.namespace}/configmaps"
    status, answer = _send(kube, "POST", path, _body("v1", "Secret", secret), pb.MEDIA_TYPE)
    assert status == 400 and answer["reason"] == "BadRequest"
    assert "cannot be handled as a ConfigMap" in answer["message"]


def test_delete_takes_protobuf_delete_options(kube: KubeTarget) -> None:
    config = _new(CORE + "ConfigMap")
    config.metadata.name = "c"
    path = f"/api/v1/namespaces/{kube.namespace}/configmaps"
    assert _send(kube, "POST", path, _body("v1", "ConfigMap", config), pb.MEDIA_TYPE)[0] == 201
    options = _new(META + "DeleteOptions")
    options.preconditions.uid = "not-the-uid"
    status, answer = _send(
        kube, "DELETE", f"{path}/c", _body("v1", "DeleteOptions", options), pb.MEDIA_TYPE
    )
    assert status == 409 and answer["details"] == {"name": "c", "kind": "ConfigMap"}
    assert answer["message"].startswith(
        'Operation cannot be fulfilled on ConfigMap "c": the UID in the precondition '
        "(not-the-uid) does not match the UID in record ("
    )
    options = _new(META + "DeleteOptions")
    options.propagationPolicy = "Background"
    status, answer = _send(
        kube, "DELETE", f"{path}/c", _body("v1", "DeleteOptions", options), pb.MEDIA_TYPE
    )
    assert status == 200 and answer["status"] == "Success"


# ------------------------------------------------------------------ hostile bodies


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(
        [
            ("", "v1", "ConfigMap"),
            ("apps", "v1", "Deployment"),
            ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ]
    ),
    raw=st.binary(max_size=200),
    envelope=st.booleans(),
)
def test_arbitrary_bytes_decode_or_are_refused_never_crash(
    kind: tuple[str, str, str], raw: bytes, envelope: bool
) -> None:
    group, version, name = kind
    api_version = f"{group}/{version}" if group else version
    body = pb.MAGIC + raw
    if envelope:
        wrapper = _new("k8s.io.apimachinery.pkg.runtime.Unknown")
        wrapper.typeMeta.apiVersion = api_version
        wrapper.typeMeta.kind = name
        wrapper.raw = raw
        body = pb.MAGIC + wrapper.SerializeToString()
    try:
        decoded = pb.decode(body, group, version, name)
    except pb.ProtobufError:
        return
    json.dumps(decoded)  # whatever decodes is plain JSON data
    assert decoded["kind"] == name


def test_deeply_nested_bodies_are_400_not_a_dropped_connection(kube: KubeTarget) -> None:
    deep = b"[" * 100_000
    path = f"/api/v1/namespaces/{kube.namespace}/configmaps"
    status, answer = _send(kube, "POST", path, deep, None)
    assert status == 400 and "max depth" in answer["message"]
    if not kube.is_double:
        return  # a real server keeps RawExtension bytes undecoded
    revision = _new("k8s.io.api.apps.v1.ControllerRevision")
    revision.metadata.name = "r"
    revision.data.raw = deep
    status, answer = _send(
        kube,
        "POST",
        f"/apis/apps/v1/namespaces/{kube.namespace}/controllerrevisions",
        _body("apps/v1", "ControllerRevision", revision),
        pb.MEDIA_TYPE,
    )
    assert status == 400 and "does not hold JSON" in answer["message"], answer


def test_a_protobuf_service_port_without_target_port_targets_its_port(kube: KubeTarget) -> None:
    # IntOrString is no pointer: the body carries targetPort 0, which defaulting replaces.
    service = _new(CORE + "Service")
    service.metadata.name = "web"
    port = service.spec.ports.add()
    port.port = 80
    service.spec.selector["app"] = "web"
    path = f"/api/v1/namespaces/{kube.namespace}/services"
    status, created = _send(kube, "POST", path, _body("v1", "Service", service), pb.MEDIA_TYPE)
    assert status == 201, created
    assert created["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]


def test_a_protobuf_scale_updates_the_deployments_replicas(kube: KubeTarget) -> None:
    deployment = _new("k8s.io.api.apps.v1.Deployment")
    deployment.metadata.name = "web"
    deployment.spec.replicas = 1
    deployment.spec.selector.matchLabels["app"] = "web"
    deployment.spec.template.metadata.labels["app"] = "web"
    container = deployment.spec.template.spec.containers.add()
    container.name = "app"
    container.image = "registry.example/web:1"
    path = f"/apis/apps/v1/namespaces/{kube.namespace}/deployments"
    body = _body("apps/v1", "Deployment", deployment)
    assert _send(kube, "POST", path, body, pb.MEDIA_TYPE)[0] == 201
    scale = _new("k8s.io.api.autoscaling.v1.Scale")
    scale.metadata.name = "web"
    scale.metadata.namespace = kube.namespace
    scale.spec.replicas = 0
    body = _body("autoscaling/v1", "Scale", scale)
    status, answer = _send(kube, "PUT", f"{path}/web/scale", body, pb.MEDIA_TYPE)
    assert status == 200, answer
    # Scale.spec.replicas is omitempty, so a Scale of 0 has an empty spec.
    assert answer["kind"] == "Scale" and answer["spec"] == {}
    assert _send(kube, "GET", f"{path}/web", b"", None)[1]["spec"]["replicas"] == 0


def test_patch_types_a_resource_does_not_take_are_415_as_the_real_server_words_them(
    kube: KubeTarget,
) -> None:
    path = f"/api/v1/namespaces/{kube.namespace}/configmaps"
    assert _send(kube, "POST", path, b'{"metadata":{"name":"c"}}', "application/json")[0] == 201
    for media in ("text/plain", "application/json", pb.MEDIA_TYPE):
        status, answer = _send(kube, "PATCH", f"{path}/c", b"{}", media)
        assert (status, answer["message"], answer["details"]) == (
            415,
            "415: Unsupported Media Type",
            {},
        ), media
    suffix = uuid.uuid4().hex[:8]
    group = f"t{suffix}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    assert _send(kube, "POST", crds, json.dumps(crd).encode(), "application/json")[0] == 201
    try:
        gadgets = f"/apis/{group}/v1/namespaces/{kube.namespace}/gadgets"
        gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}}
        deadline = time.monotonic() + 30
        while _send(kube, "POST", gadgets, json.dumps(gadget).encode(), None)[0] != 201:
            assert time.monotonic() < deadline, "the custom resource was never served"
            time.sleep(0.2)
        for media in ("application/strategic-merge-patch+json", "text/plain"):
            status, answer = _send(kube, "PATCH", f"{gadgets}/g", b"{}", media)
            assert (status, answer["message"]) == (
                415,
                "the body of the request was in an unknown format - accepted media types "
                "include: application/json-patch+json, application/merge-patch+json, "
                "application/apply-patch+yaml",
            ), media
    finally:
        _send(kube, "DELETE", f"{crds}/gadgets.{group}", b"", None)

"""CRUD, LIST selectors and paging, deletion and CRDs through the real kubernetes client.

Runs against the double, or ``$SPECC_TEST_KUBECONFIG``'s cluster (``kube`` fixture).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import NotFoundError, UnprocessibleEntityError

from specc.testing.pytest_plugin import KubeTarget


def _cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": name}}


@pytest.fixture
def core(kube: KubeTarget) -> client.CoreV1Api:
    return client.CoreV1Api(kube.api_client())


def test_create_get_update_delete_roundtrip(kube: KubeTarget, core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map(kube.namespace, _cm("a"))
    assert created.metadata.uid and created.metadata.resource_version
    fetched = core.read_namespaced_config_map("a", kube.namespace)
    assert fetched.data == {"k": "a"}
    fetched.data = {"k": "b"}
    replaced = core.replace_namespaced_config_map("a", kube.namespace, fetched)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    status = core.delete_namespaced_config_map("a", kube.namespace)
    assert (status["status"] if isinstance(status, dict) else status.status) == "Success"
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("a", kube.namespace)
    assert missing.value.status == 404


def test_create_of_an_existing_object_is_409_already_exists(
    kube: KubeTarget, core: client.CoreV1Api
) -> None:
    core.create_namespaced_config_map(kube.namespace, _cm("a"))
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(kube.namespace, _cm("a"))
    assert exists.value.status == 409
    assert '"reason":"AlreadyExists"' in exists.value.body.replace(" ", "")


def test_deleting_an_absent_object_is_404(kube: KubeTarget) -> None:
    resource = kube.dynamic_client().resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(NotFoundError):
        resource.delete(name="absent", namespace=kube.namespace)


def test_label_selectors_equality_set_and_existence(
    kube: KubeTarget, core: client.CoreV1Api
) -> None:
    core.create_namespaced_config_map(kube.namespace, _cm("a", {"tier": "web", "env": "prod"}))
    core.create_namespaced_config_map(kube.namespace, _cm("b", {"tier": "db", "env": "prod"}))
    core.create_namespaced_config_map(kube.namespace, _cm("c", {"tier": "web"}))

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_config_map(kube.namespace, label_selector=selector).items
        return sorted(i.metadata.name for i in items if i.metadata.name in {"a", "b", "c"})

    assert names("tier=web") == ["a", "c"]
    assert names("tier==web,env=prod") == ["a"]
    assert names("tier!=web") == ["b"]
    assert names("tier in (web, db)") == ["a", "b", "c"]
    assert names("tier notin (web)") == ["b"]
    assert names("env") == ["a", "b"]
    assert names("!env") == ["c"]


def test_field_selector_on_name_and_namespace(kube: KubeTarget, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(kube.namespace, _cm("a"))
    core.create_namespaced_config_map(kube.namespace, _cm("b"))
    items = core.list_namespaced_config_map(kube.namespace, field_selector="metadata.name=b").items
    assert [i.metadata.name for i in items] == ["b"]
    everywhere = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.namespace={kube.namespace},metadata.name!=b"
    ).items
    assert "a" in [i.metadata.name for i in everywhere]
    assert "b" not in [i.metadata.name for i in everywhere]


def test_list_pages_with_limit_and_continue(kube: KubeTarget, core: client.CoreV1Api) -> None:
    for i in range(5):
        core.create_namespaced_config_map(kube.namespace, _cm(f"page-{i}", {"paged": "yes"}))
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = core.list_namespaced_config_map(
            kube.namespace, label_selector="paged=yes", limit=2, _continue=token
        )
        seen.extend(i.metadata.name for i in page.items)
        pages += 1
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"page-{i}" for i in range(5)]
    assert pages == 3


def test_namespaced_write_into_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        core.create_namespaced_config_map("no-such-namespace-" + uuid.uuid4().hex[:6], _cm("a"))
    assert missing.value.status == 404


def test_invalid_name_is_422_invalid(kube: KubeTarget) -> None:
    resource = kube.dynamic_client().resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(UnprocessibleEntityError) as invalid:
        resource.create(
            body={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}},
            namespace=kube.namespace,
        )
    assert "RFC 1123" in str(invalid.value.body)


def test_background_deletion_removes_dependents_and_orphan_keeps_them(
    kube: KubeTarget, core: client.CoreV1Api
) -> None:
    owner = core.create_namespaced_config_map(kube.namespace, _cm("owner"))
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    dependent = _cm("dependent")
    dependent["metadata"]["ownerReferences"] = [ref]
    core.create_namespaced_config_map(kube.namespace, dependent)
    core.delete_namespaced_config_map("owner", kube.namespace, propagation_policy="Background")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_config_map("dependent", kube.namespace)
        except ApiException as exc:
            assert exc.status == 404
            break
        time.sleep(0.2)
    else:
        raise AssertionError("dependent was not garbage collected")

    owner = core.create_namespaced_config_map(kube.namespace, _cm("owner2"))
    kept = _cm("kept")
    kept["metadata"]["ownerReferences"] = [{**ref, "name": "owner2", "uid": owner.metadata.uid}]
    core.create_namespaced_config_map(kube.namespace, kept)
    core.delete_namespaced_config_map("owner2", kube.namespace, propagation_policy="Orphan")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live = core.read_namespaced_config_map("kept", kube.namespace)
        if not live.metadata.owner_references:
            break
        time.sleep(0.2)
    assert not live.metadata.owner_references


def test_strategic_merge_patch_merges_containers_by_name(kube: KubeTarget) -> None:
    apps = client.AppsV1Api(kube.api_client())
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "a:1"},
                        {"name": "side", "image": "s:1"},
                    ]
                },
            },
        },
    }
    apps.create_namespaced_deployment(kube.namespace, body)
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s:2"}]}}}}
    patched = apps.patch_namespaced_deployment("web", kube.namespace, patch)
    images = {c.name: c.image for c in patched.spec.template.spec.containers}
    assert images == {"app": "a:1", "side": "s:2"}


CRD_GROUP = "example.dev"


def _crd(plural: str, kind: str, scope: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{CRD_GROUP}"},
        "spec": {
            "group": CRD_GROUP,
            "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "members": {
                                            "type": "array",
                                            "x-kubernetes-list-type": "map",
                                            "x-kubernetes-list-map-keys": ["name"],
                                            "items": {
                                                "type": "object",
                                                # A list-map key must be required or defaulted.
                                                "required": ["name"],
                                                "properties": {
                                                    "name": {"type": "string"},
                                                    "role": {"type": "string"},
                                                },
                                            },
                                        },
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def _established(kube: KubeTarget, name: str) -> None:
    ext = client.ApiextensionsV1Api(kube.api_client())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        crd = ext.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        if conditions.get("Established") == "True":
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} never became Established")


@pytest.mark.parametrize(
    ("scope", "plural", "kind"),
    [("Namespaced", "shards", "Shard"), ("Cluster", "regions", "Region")],
)
def test_crd_is_established_then_serves_its_resource(
    kube: KubeTarget, scope: str, plural: str, kind: str
) -> None:
    suffix = uuid.uuid4().hex[:5]
    plural, kind = f"{plural}{suffix}", f"{kind}{suffix}"
    dynamic = kube.dynamic_client()
    crds = dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    crds.server_side_apply(body=_crd(plural, kind, scope), field_manager="specc")
    try:
        _established(kube, f"{plural}.{CRD_GROUP}")
        dynamic.resources.invalidate_cache()
        resource = dynamic.resources.get(api_version=f"{CRD_GROUP}/v1", kind=kind)
        assert resource.namespaced == (scope == "Namespaced")
        namespace = kube.namespace if scope == "Namespaced" else None
        body: dict[str, Any] = {
            "apiVersion": f"{CRD_GROUP}/v1",
            "kind": kind,
            "metadata": {"name": "main"},
            "spec": {"size": 3, "members": [{"name": "a", "role": "x"}]},
        }
        if namespace:
            body["metadata"]["namespace"] = namespace
        created = resource.server_side_apply(body=body, field_manager="alice", namespace=namespace)
        assert created.metadata.generation == 1
        other = {**body, "spec": {"members": [{"name": "b", "role": "y"}]}}
        merged = resource.server_side_apply(body=other, field_manager="bob", namespace=namespace)
        assert [m["name"] for m in merged.spec.members] == ["a", "b"]
        bad = {**body, "metadata": {**body["metadata"], "name": "bad"}, "spec": {"size": 0}}
        with pytest.raises(UnprocessibleEntityError) as invalid:
            resource.server_side_apply(body=bad, field_manager="specc", namespace=namespace)
        assert "should be greater than or equal to 1" in str(invalid.value.body)
    finally:
        crds.delete(name=f"{plural}.{CRD_GROUP}")


def test_crd_whose_list_map_key_is_neither_required_nor_defaulted_is_422(
    kube: KubeTarget,
) -> None:
    """The API server refuses such a CRD (apiextensions validation); the double did not."""
    suffix = uuid.uuid4().hex[:5]
    crd = _crd(f"shards{suffix}", f"Shard{suffix}", "Namespaced")
    members = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["members"]
    del members["items"]["required"]
    crds = kube.dynamic_client().resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    with pytest.raises(UnprocessibleEntityError) as invalid:
        crds.server_side_apply(body=crd, field_manager="specc")
    body = json.loads(invalid.value.body)
    assert [(c["reason"], c["field"]) for c in body["details"]["causes"]] == [
        (
            "FieldValueRequired",
            "spec.validation.openAPIV3Schema.properties[spec].properties[members]"
            ".items.properties[name].default",
        )
    ]
    assert body["details"]["causes"][0]["message"] == (
        "Required value: this property is in x-kubernetes-list-map-keys, "
        "so it must have a default or be a required property"
    )
    # Defaulting the key is the other way to make it valid.
    members["items"]["properties"]["name"]["default"] = "main"
    crds.server_side_apply(body=crd, field_manager="specc")
    crds.delete(name=crd["metadata"]["name"])


def test_status_subresource_writes_only_status_and_main_resource_ignores_status(
    kube: KubeTarget,
) -> None:
    apps = client.AppsV1Api(kube.api_client())
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "a:1"}]},
            },
        },
        "status": {"replicas": 9},
    }
    created = apps.create_namespaced_deployment(kube.namespace, body)
    assert not created.status.replicas
    patched = apps.patch_namespaced_deployment_status(
        "web", kube.namespace, {"status": {"replicas": 2}, "spec": {"replicas": 7}}
    )
    assert (patched.status.replicas, patched.spec.replicas) == (2, 2)
    scale = apps.read_namespaced_deployment_scale("web", kube.namespace)
    assert scale.spec.replicas == 2
    apps.patch_namespaced_deployment_scale("web", kube.namespace, {"spec": {"replicas": 4}})
    assert apps.read_namespaced_deployment("web", kube.namespace).spec.replicas == 4


def test_deleting_a_namespace_removes_its_objects(kube: KubeTarget, core: client.CoreV1Api) -> None:
    name = f"doomed-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, _cm("a"))
    core.delete_namespace(name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            core.read_namespace(name)
        except ApiException as exc:
            assert exc.status == 404
            break
        time.sleep(0.5)
    else:
        raise AssertionError("namespace was not deleted")
    assert (
        core.list_config_map_for_all_namespaces(field_selector=f"metadata.namespace={name}").items
        == []
    )

"""Server-side apply conformance: the documented behaviours, through the real client.

Each scenario cites what it checks: sections of https://kubernetes.io/docs/reference/using-api/server-side-apply/
(SSA#…), https://kubernetes.io/docs/reference/using-api/api-concepts/ (API#…) and
the structured-merge-diff tests (SMD merge/…_test.go). They run against the double,
or against the cluster of ``$SPECC_TEST_KUBECONFIG`` when it is set (``kube`` fixture).
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest

from specc.testing.pytest_plugin import KubeTarget

APPLY = "application/apply-patch+yaml"
#: When a list, every request :func:`call` sends is appended with its answer; the
#: differential check (test_differential.py) replays them on the real server.
RECORDING: list[dict[str, Any]] | None = None


def call(
    kube: KubeTarget,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
    **query: str,
) -> tuple[int, Any]:
    """Send one request with the real client; return (status, body) for successes and errors."""
    api = kube.api_client()
    serialized = api.param_serialize(
        method,
        path,
        query_params=list(query.items()),
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized[:4])
    response.read()
    answer = json.loads(response.data)
    if RECORDING is not None:
        RECORDING.append(
            {
                "method": method,
                "path": path,
                "query": dict(query),
                "body": copy.deepcopy(body),
                "content_type": content_type,
                "status": response.status,
                "response": answer,
            }
        )
    return response.status, answer


def cm_path(kube: KubeTarget, name: str = "app") -> str:
    return f"/api/v1/namespaces/{kube.namespace}/configmaps/{name}"


def deploy_path(kube: KubeTarget, name: str = "web") -> str:
    return f"/apis/apps/v1/namespaces/{kube.namespace}/deployments/{name}"


def apply(
    kube: KubeTarget, path: str, body: dict[str, Any], manager: str, **query: str
) -> tuple[int, Any]:
    """Server-side apply ``body`` as ``manager``."""
    return call(kube, "PATCH", path, body, APPLY, fieldManager=manager, **query)


def configmap(
    kube: KubeTarget, data: dict[str, str], name: str = "app", **meta: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": kube.namespace, **meta},
        "data": data,
    }


def deployment(kube: KubeTarget, replicas: int | None = None, **container: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "app", "image": "registry.example/web:1.0", **container}]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": kube.namespace},
        "spec": spec,
    }


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return fieldsV1 by manager name, of the main resource.

    On a real cluster the controllers write status through the status subresource (an
    entry with ``subresource: status``); those entries are not what these tests are about.
    """
    return {
        e["manager"]: e["fieldsV1"]
        for e in obj["metadata"].get("managedFields", [])
        if not e.get("subresource")
    }


def settled(kube: KubeTarget, path: str) -> dict[str, Any]:
    """Return the object once no controller writes it any more (at once on the double).

    A real Deployment's status is written by its controller a few times after each change,
    and every write moves resourceVersion; "this apply wrote nothing" is measured from here.
    """
    _, obj = call(kube, "GET", path)
    while not kube.is_double:
        time.sleep(0.5)
        _, again = call(kube, "GET", path)
        if again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]:
            break
        obj = again
    return obj


def container(obj: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return first


# --------------------------------------------------------------------------- creation


def test_apply_creates_the_object_with_201_and_records_an_apply_entry(kube: KubeTarget) -> None:
    """SSA#field-management: the applier becomes the manager of every field it sets."""
    status, obj = apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "specc")
    assert status == 201
    assert obj["data"] == {"a": "1"}
    [entry] = obj["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == (
        "specc",
        "Apply",
        "FieldsV1",
    )
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert obj["metadata"]["uid"] and obj["metadata"]["creationTimestamp"]


def test_reapplying_an_unchanged_config_is_a_noop(kube: KubeTarget) -> None:
    """SSA#field-management (SMD merge/multiple_appliers_test.go): same intent, no write."""
    config = deployment(kube, replicas=2)
    apply(kube, deploy_path(kube), config, "specc")
    first = settled(kube, deploy_path(kube))
    status, second = apply(kube, deploy_path(kube), config, "specc")
    assert status == 200
    assert second["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert second["metadata"]["generation"] == first["metadata"]["generation"] == 1
    assert second["metadata"]["managedFields"] == first["metadata"]["managedFields"]


def test_server_defaults_are_added_but_not_owned(kube: KubeTarget) -> None:
    """SSA#field-management: defaulted fields exist in the object and belong to nobody."""
    _, obj = apply(
        kube, deploy_path(kube), deployment(kube, ports=[{"containerPort": 80}]), "specc"
    )
    app = container(obj)
    assert app["imagePullPolicy"] == "IfNotPresent"
    assert app["terminationMessagePath"] == "/dev/termination-log"
    assert app["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert obj["spec"]["strategy"]["type"] == "RollingUpdate"
    owned = managers(obj)["specc"]["f:spec"]
    assert "f:strategy" not in owned
    assert 'k:{"containerPort":80,"protocol":"TCP"}' in json.dumps(owned).replace('\\"', '"')


# --------------------------------------------------------------------------- conflicts


def test_conflicting_apply_is_409_naming_manager_and_field(kube: KubeTarget) -> None:
    """SSA#conflicts: a different value for a field another applier owns is refused."""
    apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "alice")
    status, body = apply(kube, cm_path(kube), configmap(kube, {"a": "2"}), "bob")
    assert status == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "alice": .data.a'
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".data.a"}
    ]


def test_conflict_with_an_update_manager_names_its_api_version(kube: KubeTarget) -> None:
    """SSA#conflicts and #apply-and-update: Update managers are named with their apiVersion."""
    apply(kube, deploy_path(kube), deployment(kube, replicas=1), "specc")
    call(
        kube,
        "PATCH",
        deploy_path(kube),
        {"spec": {"replicas": 5}},
        "application/merge-patch+json",
        fieldManager="kubectl-scale",
    )
    status, body = apply(kube, deploy_path(kube), deployment(kube, replicas=2), "specc")
    assert status == 409
    assert body["message"] == (
        'Apply failed with 1 conflict: conflict with "kubectl-scale" using apps/v1: .spec.replicas'
    )


def test_dynamic_client_surfaces_conflict_error(kube: KubeTarget) -> None:
    """SSA#conflicts: the status body lets the kubernetes client raise ConflictError."""
    from kubernetes.dynamic.exceptions import ConflictError

    resource = kube.dynamic_client().resources.get(api_version="v1", kind="ConfigMap")
    resource.server_side_apply(body=configmap(kube, {"a": "1"}), field_manager="alice")
    with pytest.raises(ConflictError):
        resource.server_side_apply(body=configmap(kube, {"a": "2"}), field_manager="bob")


def test_force_overrides_the_value_and_transfers_ownership(kube: KubeTarget) -> None:
    """SSA#conflicts ("Overwrite value, become sole manager"): force moves the field."""
    apply(kube, cm_path(kube), configmap(kube, {"a": "1", "b": "1"}), "alice")
    status, obj = apply(kube, cm_path(kube), configmap(kube, {"a": "2"}), "bob", force="true")
    assert status == 200
    assert obj["data"] == {"a": "2", "b": "1"}
    owned = managers(obj)
    assert owned["bob"] == {"f:data": {"f:a": {}}}
    assert owned["alice"] == {"f:data": {"f:b": {}}}


def test_same_value_from_two_appliers_is_shared_ownership(kube: KubeTarget) -> None:
    """SSA#conflicts ("Don't overwrite value, give up management claim"): equal values share."""
    apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "alice")
    status, obj = apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "bob")
    assert status == 200
    assert managers(obj)["alice"] == managers(obj)["bob"] == {"f:data": {"f:a": {}}}
    status, _ = apply(kube, cm_path(kube), configmap(kube, {"a": "3"}), "bob")
    assert status == 409, "changing a shared field conflicts with the co-owner"


# --------------------------------------------------------------------------- field removal


def test_field_dropped_from_config_is_removed_when_solely_owned(kube: KubeTarget) -> None:
    """SSA#field-management: a field removed from the manifest and owned by nobody else goes."""
    apply(kube, cm_path(kube), configmap(kube, {"a": "1", "b": "2"}), "specc")
    _, obj = apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "specc")
    assert obj["data"] == {"a": "1"}
    assert managers(obj)["specc"] == {"f:data": {"f:a": {}}}


def test_field_dropped_from_config_is_kept_when_co_owned(kube: KubeTarget) -> None:
    """SSA#field-management and #transferring-ownership: another owner keeps the field alive."""
    apply(kube, cm_path(kube), configmap(kube, {"a": "1", "b": "2"}), "specc")
    apply(kube, cm_path(kube), configmap(kube, {"b": "2"}), "other")
    _, obj = apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "specc")
    assert obj["data"] == {"a": "1", "b": "2"}
    assert managers(obj)["other"] == {"f:data": {"f:b": {}}}


def test_dropped_field_with_a_default_is_reset_to_the_default(kube: KubeTarget) -> None:
    """SSA#field-management: "…deleted from the live object, or reset to its default value"."""
    custom = deployment(kube)
    custom["spec"]["revisionHistoryLimit"] = 3
    apply(kube, deploy_path(kube), custom, "specc")
    _, obj = apply(kube, deploy_path(kube), deployment(kube), "specc")
    assert obj["spec"]["revisionHistoryLimit"] == 10


def test_dropped_list_item_is_removed_with_its_defaults(kube: KubeTarget) -> None:
    """SSA#merge-strategy: removal applies to associative-list items as a whole."""
    two = deployment(kube)
    two["spec"]["template"]["spec"]["containers"].append(
        {"name": "sidecar", "image": "registry.example/s:1"}
    )
    apply(kube, deploy_path(kube), two, "specc")
    _, obj = apply(kube, deploy_path(kube), deployment(kube), "specc")
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["app"]


# --------------------------------------------------------------------------- update + apply


def test_update_takes_ownership_of_what_it_changes(kube: KubeTarget) -> None:
    """SSA#apply-and-update (SMD merge/update_test.go): a PATCH moves changed fields to its manager."""
    apply(kube, deploy_path(kube), deployment(kube, replicas=1), "specc")
    ops = [
        {
            "op": "replace",
            "path": "/spec/template/spec/containers/0/image",
            "value": "registry.example/web:hijack",
        }
    ]
    status, obj = call(
        kube,
        "PATCH",
        deploy_path(kube),
        ops,
        "application/json-patch+json",
        fieldManager="kubectl-patch",
    )
    assert status == 200
    owned = managers(obj)
    assert "f:image" in json.dumps(owned["kubectl-patch"])
    assert "f:image" not in json.dumps(owned["specc"])
    entry = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "kubectl-patch")
    assert (entry["operation"], entry["apiVersion"]) == ("Update", "apps/v1")
    # Healing with force takes the field back and empties the patcher's entry.
    _, healed = apply(kube, deploy_path(kube), deployment(kube, replicas=1), "specc", force="true")
    assert container(healed)["image"] == "registry.example/web:1.0"
    assert set(managers(healed)) == {"specc"}


def test_update_without_field_manager_is_named_by_user_agent(kube: KubeTarget) -> None:
    """SSA#managers: without fieldManager, the User-Agent prefix names the Update manager."""
    from kubernetes import client

    api = kube.api_client()
    api.user_agent = "specc-probe/1.0 (linux)"
    core = client.CoreV1Api(api)
    created = core.create_namespaced_config_map(
        kube.namespace, {"metadata": {"name": "ua"}, "data": {"x": "1"}}
    )
    entry = created.metadata.managed_fields[0]
    assert (entry.manager, entry.operation) == ("specc-probe", "Update")


# --------------------------------------------------------------------------- merge strategy


def test_associative_list_items_merge_by_key_across_appliers(kube: KubeTarget) -> None:
    """SSA#merge-strategy (SMD merge/multiple_appliers_test.go): env entries merge by name."""
    apply(kube, deploy_path(kube), deployment(kube, env=[{"name": "A", "value": "1"}]), "alice")
    status, obj = apply(
        kube, deploy_path(kube), deployment(kube, env=[{"name": "B", "value": "2"}]), "bob"
    )
    assert status == 200
    assert container(obj)["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert 'k:{\\"name\\":\\"B\\"}' in json.dumps(managers(obj)["bob"])
    assert 'k:{\\"name\\":\\"A\\"}' not in json.dumps(managers(obj)["bob"])


def test_atomic_list_is_owned_and_replaced_whole(kube: KubeTarget) -> None:
    """SSA#merge-strategy: lists without list-type (tolerations) are atomic."""
    first = deployment(kube)
    first["spec"]["template"]["spec"]["tolerations"] = [{"key": "a", "operator": "Exists"}]
    second = copy.deepcopy(first)
    second["spec"]["template"]["spec"]["tolerations"] = [{"key": "b", "operator": "Exists"}]
    _, obj = apply(kube, deploy_path(kube), first, "alice")
    assert '"f:tolerations": {}' in json.dumps(managers(obj)["alice"])
    status, _ = apply(kube, deploy_path(kube), second, "bob")
    assert status == 409
    _, obj = apply(kube, deploy_path(kube), second, "bob", force="true")
    assert obj["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_granular_map_keys_merge_but_atomic_map_is_replaced(kube: KubeTarget) -> None:
    """SSA#merge-strategy: labels merge per key; a Service selector (map-type atomic) does not."""
    path = f"/api/v1/namespaces/{kube.namespace}/services/web"

    def service(labels: dict[str, str], selector: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": kube.namespace, "labels": labels},
            "spec": {"selector": selector, "ports": [{"port": 80}]},
        }

    apply(kube, path, service({"a": "1"}, {"app": "web"}), "alice")
    status, obj = apply(kube, path, service({"b": "2"}, {"app": "web"}), "bob")
    assert status == 200
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    status, _ = apply(kube, path, service({"b": "2"}, {"tier": "front"}), "bob")
    assert status == 409
    _, obj = apply(kube, path, service({"b": "2"}, {"tier": "front"}), "bob", force="true")
    assert obj["spec"]["selector"] == {"tier": "front"}
    assert obj["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]


# --------------------------------------------------------------------------- dry run & errors


def test_dry_run_apply_computes_everything_and_persists_nothing(kube: KubeTarget) -> None:
    """API#dry-run: the response is the would-be object; nothing is stored."""
    status, preview = apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "specc", dryRun="All")
    assert status == 201
    assert preview["metadata"]["managedFields"][0]["manager"] == "specc"
    status, _ = call(kube, "GET", cm_path(kube))
    assert status == 404
    _, live = apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "specc")
    status, preview = apply(kube, cm_path(kube), configmap(kube, {"a": "2"}), "specc", dryRun="All")
    assert preview["data"] == {"a": "2"}
    _, after = call(kube, "GET", cm_path(kube))
    assert after["data"] == {"a": "1"}
    assert after["metadata"]["resourceVersion"] == live["metadata"]["resourceVersion"]


def test_apply_into_a_missing_namespace_is_404(kube: KubeTarget) -> None:
    """API#namespaces (transcript errors.json): writes into a missing namespace are NotFound."""
    body = configmap(kube, {"a": "1"})
    body["metadata"]["namespace"] = "no-such-namespace"
    status, error = apply(
        kube, "/api/v1/namespaces/no-such-namespace/configmaps/app", body, "specc"
    )
    assert status == 404
    assert error["message"] == 'namespaces "no-such-namespace" not found'


def test_invalid_object_is_422_with_causes(kube: KubeTarget) -> None:
    """API#validation (transcript errors.json): Invalid with one cause per field."""
    bad = deployment(kube)
    del bad["spec"]["selector"]
    status, error = apply(kube, deploy_path(kube), bad, "specc")
    assert status == 422
    assert error["reason"] == "Invalid"
    fields = [c["field"] for c in error["details"]["causes"]]
    assert fields == ["spec.selector", "spec.template.metadata.labels"]
    assert error["details"]["causes"][0]["reason"] == "FieldValueRequired"


def test_unknown_field_in_an_apply_patch_fails_typed_conversion(kube: KubeTarget) -> None:
    """SSA#api-implementation (transcript errors.json): undeclared fields break the typed patch."""
    body = configmap(kube, {"a": "1"})
    body["bogusField"] = 1
    status, error = apply(kube, cm_path(kube), body, "specc", fieldValidation="Strict")
    assert status == 500
    assert error["message"].endswith(".bogusField: field not declared in schema")


def test_managed_fields_in_an_apply_body_are_refused(kube: KubeTarget) -> None:
    """SSA#api-implementation: an apply configuration may not carry managedFields."""
    body = configmap(kube, {"a": "1"}, managedFields=[{"manager": "x", "operation": "Apply"}])
    status, error = apply(kube, cm_path(kube), body, "specc")
    assert status == 400
    assert error["reason"] == "BadRequest"


def test_apply_without_field_manager_is_422(kube: KubeTarget) -> None:
    """SSA#managers: fieldManager is required for apply (transcript errors.json)."""
    status, error = call(kube, "PATCH", cm_path(kube), configmap(kube, {"a": "1"}), APPLY)
    assert status == 422
    assert error["details"]["causes"][0]["field"] == "fieldManager"


def test_put_with_a_stale_resource_version_is_409(kube: KubeTarget) -> None:
    """API#resource-versions: optimistic concurrency on update."""
    _, live = apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "specc")
    call(
        kube,
        "PATCH",
        cm_path(kube),
        {"data": {"a": "2"}},
        "application/merge-patch+json",
        fieldManager="x",
    )
    stale = copy.deepcopy(live)
    stale["data"] = {"a": "3"}
    status, error = call(kube, "PUT", cm_path(kube), stale)
    assert status == 409
    assert error["reason"] == "Conflict"
    assert "the object has been modified" in error["message"]


def test_generation_moves_on_spec_changes_only(kube: KubeTarget) -> None:
    """API#metadata: generation counts spec changes; label changes do not bump it."""
    _, first = apply(kube, deploy_path(kube), deployment(kube, replicas=1), "specc")
    labelled = deployment(kube, replicas=1)
    labelled["metadata"]["labels"] = {"team": "a"}
    _, second = apply(kube, deploy_path(kube), labelled, "specc")
    assert second["metadata"]["generation"] == first["metadata"]["generation"] == 1
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    _, third = apply(kube, deploy_path(kube), deployment(kube, replicas=3), "specc")
    assert third["metadata"]["generation"] == 2


def test_quantities_are_stored_in_canonical_form(kube: KubeTarget) -> None:
    """API#quantities (transcript quantity-canonical-form.json): 0.5 → 500m, 1024Mi → 1Gi."""
    _, obj = apply(
        kube,
        deploy_path(kube),
        deployment(kube, resources={"requests": {"cpu": "0.5", "memory": "1024Mi"}}),
        "specc",
    )
    assert container(obj)["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    obj = settled(kube, deploy_path(kube))
    _, again = apply(
        kube,
        deploy_path(kube),
        deployment(kube, resources={"requests": {"cpu": "0.5", "memory": "1024Mi"}}),
        "specc",
    )
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


@pytest.mark.parametrize("reset", [[{}], []], ids=["one-empty-entry", "empty-list"])
def test_managed_fields_are_cleared_by_an_update_with_an_empty_list(
    kube: KubeTarget, reset: list[Any]
) -> None:
    """SSA#clearing-managedfields: [{}] strips them, and so does [] on kube-apiserver 1.36.

    The documentation says an empty list leaves them alone; the real server strips them
    (apimachinery treats any non-nil empty list as a reset). Leaving the field out keeps them.
    """
    apply(kube, cm_path(kube), configmap(kube, {"a": "1"}), "specc")
    patch = "application/merge-patch+json"
    _, kept = call(kube, "PATCH", cm_path(kube), {"data": {"a": "1"}}, patch)
    assert [e["manager"] for e in kept["metadata"]["managedFields"]] == ["specc"]
    _, cleared = call(kube, "PATCH", cm_path(kube), {"metadata": {"managedFields": reset}}, patch)
    assert "managedFields" not in cleared["metadata"]
    # An object without managedFields is no longer tracked by updates ...
    _, updated = call(
        kube, "PATCH", cm_path(kube), {"data": {"b": "2"}}, patch, fieldManager="kubectl-patch"
    )
    assert "managedFields" not in updated["metadata"]
    # ... until the next apply, which first gives what is there to "before-first-apply".
    status, applied = apply(kube, cm_path(kube), configmap(kube, {"c": "3"}), "specc")
    assert status == 200
    assert {e["manager"]: e["operation"] for e in applied["metadata"]["managedFields"]} == {
        "specc": "Apply",
        "before-first-apply": "Update",
    }
    assert managers(applied)["before-first-apply"] == {"f:data": {".": {}, "f:a": {}, "f:b": {}}}


def test_a_write_through_scale_is_recorded_with_the_subresource_and_no_time(
    kube: KubeTarget,
) -> None:
    """kube-apiserver 1.36: a /scale Update entry names ``subresource: scale`` and has no time."""
    apply(kube, deploy_path(kube), deployment(kube, replicas=1), "specc")
    status, _ = call(
        kube,
        "PATCH",
        deploy_path(kube) + "/scale",
        {"spec": {"replicas": 3}},
        "application/merge-patch+json",
        fieldManager="kubectl",
    )
    assert status == 200
    _, obj = call(kube, "GET", deploy_path(kube))
    assert obj["spec"]["replicas"] == 3
    (entry,) = [e for e in obj["metadata"]["managedFields"] if e["manager"] == "kubectl"]
    assert entry == {
        "manager": "kubectl",
        "operation": "Update",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:replicas": {}}},
        "subresource": "scale",
    }
    assert "f:replicas" not in json.dumps(managers(obj)["specc"])


def _statefulset(kube: KubeTarget, storage: str = "1Gi", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": kube.namespace},
        "spec": {
            "serviceName": "db",
            "replicas": 1,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "registry.example/db:1"}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": storage}},
                    },
                }
            ],
            **spec,
        },
    }


@pytest.mark.parametrize(
    "change",
    [{"storage": "2Gi"}, {"serviceName": "db2"}, {"podManagementPolicy": "Parallel"}],
    ids=["volume-claim-templates", "service-name", "pod-management-policy"],
)
def test_statefulset_spec_outside_the_mutable_fields_is_forbidden(
    kube: KubeTarget, change: dict[str, Any]
) -> None:
    """ValidateStatefulSetUpdate: only replicas, template, updateStrategy… may change."""
    path = f"/apis/apps/v1/namespaces/{kube.namespace}/statefulsets/db"
    status, _ = apply(kube, path, _statefulset(kube), "specc")
    assert status == 201
    status, body = apply(kube, path, _statefulset(kube, **change), "specc")
    assert status == 422, body
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": "Forbidden: updates to statefulset spec for fields other than "
            "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
            "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            "field": "spec",
        }
    ]
    # The mutable ones still change.
    status, obj = apply(kube, path, _statefulset(kube, replicas=3, minReadySeconds=5), "specc")
    assert (status, obj["spec"]["replicas"], obj["spec"]["minReadySeconds"]) == (200, 3, 5)

"""The check stage: rendered objects against Kubernetes and CRD schemas."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.check import (
    CrdSchemas,
    KubernetesSchemas,
    UnsupportedVersionError,
    check_objects,
    check_render,
    crd_json_schema,
    field_path,
    resolve_version,
)
from specc.errors import CheckError, Finding, Position
from specc.objects import ClusterRender, DesiredObject

FLEET = Path(__file__).resolve().parent.parent / "fleet"
ETCD_CRD = FLEET / "crds" / "etcdclusters.etcd.database.coreos.com.yaml"
SOURCE = Position("apps/storefront/web.yaml", 7, 3)
META = {"name": "web", "namespace": "storefront", "labels": {"app.kubernetes.io/name": "web"}}


def deployment(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": copy.deepcopy(META),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/name": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "registry.example.com/web:1.4.2",
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "1Gi"},
                                "limits": {"cpu": 2, "memory": "1536Mi"},
                            },
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
                        }
                    ],
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                        }
                    ],
                },
            },
        },
    }
    body["spec"].update(spec)
    return body


def pod_template() -> dict[str, Any]:
    return copy.deepcopy(deployment()["spec"]["template"])


VALID: dict[str, dict[str, Any]] = {
    "Deployment": deployment(),
    "Service": {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": META,
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    },
    "ConfigMap": {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {**META, "name": "web-config-5f2a9c"},
        "data": {"app.toml": "port = 8080\n"},
    },
    "HorizontalPodAutoscaler": {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": META,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    },
    "PodDisruptionBudget": {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": META,
        "spec": {
            "maxUnavailable": "25%",
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
        },
    },
    "CronJob": {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {**META, "name": "db-backup"},
        "spec": {
            "schedule": "0 3 * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "template": {
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "containers": [{"name": "backup", "image": "backup:2.1"}],
                        }
                    },
                }
            },
        },
    },
    "StatefulSet": {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {**META, "name": "db"},
        "spec": {
            "serviceName": "db-headless",
            "replicas": 3,
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": pod_template(),
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "20Gi"}},
                    },
                }
            ],
        },
    },
    "NetworkPolicy": {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {**META, "name": "default-deny"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "from": [{"namespaceSelector": {"matchLabels": {"team": "edge"}}}],
                    "ports": [{"port": "http", "protocol": "TCP"}, {"port": 9090}],
                }
            ],
        },
    },
}


def obj(body: dict[str, Any], source: Position = SOURCE) -> DesiredObject:
    return DesiredObject(copy.deepcopy(body), source, origin="Service/storefront/web")


def check(
    *bodies: dict[str, Any], version: str = "1.33", crds: CrdSchemas | None = None
) -> list[Finding]:
    return check_objects([obj(b) for b in bodies], version, crds)


@pytest.fixture(scope="module")
def etcd_crds() -> CrdSchemas:
    return CrdSchemas.from_documents(yaml.safe_load_all(ETCD_CRD.read_text()))


def etcd(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "etcd.database.coreos.com/v1beta2",
        "kind": "EtcdCluster",
        "metadata": {"name": "sessions", "namespace": "payments"},
        "spec": {"size": 3, "version": "3.5.12", **spec},
    }


# --- valid objects ----------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_objects_of_common_kinds_pass(kind: str) -> None:
    assert check(VALID[kind]) == []


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_objects_also_pass_kubernetes_validate(kind: str) -> None:
    # The fixtures are what kubernetes-validate (strict) accepts, so the checks
    # above are not passing on a schema too loose to notice.
    kubernetes_validate.validate(copy.deepcopy(VALID[kind]), "1.33.0", strict=True)


def test_int_or_string_fields_take_both_forms() -> None:
    d = deployment(strategy={"rollingUpdate": {"maxUnavailable": 1, "maxSurge": "50%"}})
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = 8080
    assert check(d) == []


@pytest.mark.parametrize("value", ["500m", "1Gi", "2", "1.5", "100M", "1e3", "0.5Ki", 2, 0.25])
def test_quantities_in_kubernetes_notation_pass(value: object) -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = value
    assert check(d) == []


# --- invalid objects: field path, source, message ----------------------------------


def test_unknown_field_is_an_error_with_path_source_and_suggestion() -> None:
    d = deployment(replica=3)
    [finding] = check(d)
    assert finding.position == SOURCE
    assert finding.subject == "Deployment/storefront/web"
    assert finding.field_path == "spec.replica"
    assert finding.message == "unknown field 'replica' (did you mean 'replicas'?)"
    assert str(finding).startswith("apps/storefront/web.yaml:7:3: Deployment/storefront/web: ")


def test_unknown_field_deep_in_the_pod_template_is_reported_at_its_path() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    [finding] = check(d)
    assert finding.field_path == "spec.template.spec.containers[0].imagePullPolcy"
    assert "did you mean 'imagePullPolicy'" in finding.message


def test_wrong_type_says_what_was_expected() -> None:
    [finding] = check(deployment(replicas="3"))
    assert finding.field_path == "spec.replicas"
    assert finding.message == 'expected an integer, got the string "3"'


def test_bad_enum_value_lists_the_allowed_ones() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Sometimes"
    [finding] = check(d)
    assert finding.field_path == "spec.template.spec.containers[0].imagePullPolicy"
    assert finding.message == (
        'expected one of "Always", "IfNotPresent", "Never", got the string "Sometimes"'
    )


def test_missing_required_field_is_reported_at_the_field() -> None:
    d = deployment()
    del d["spec"]["template"]["spec"]["containers"][0]["name"]
    [finding] = check(d)
    assert finding.field_path == "spec.template.spec.containers[0].name"
    assert finding.message == "required field is missing"


def test_object_without_a_name_is_an_error() -> None:
    cm = copy.deepcopy(VALID["ConfigMap"])
    del cm["metadata"]["name"]
    [finding] = check(cm)
    assert finding.field_path == "metadata.name"


def test_quantity_outside_the_grammar_is_an_error() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "1GB"
    [finding] = check(d)
    assert finding.field_path == "spec.template.spec.containers[0].resources.limits.memory"
    assert finding.message == 'expected a quantity such as 500m, 1Gi or 2, got the string "1GB"'


def test_int_or_string_field_rejects_other_types() -> None:
    svc = copy.deepcopy(VALID["Service"])
    svc["spec"]["ports"][0]["targetPort"] = {"name": "http"}
    [finding] = check(svc)
    assert finding.field_path == "spec.ports[0].targetPort"
    assert finding.message == "expected a string or an integer, got a mapping"


def test_int32_overflow_is_an_error() -> None:
    [finding] = check(deployment(replicas=2**31))
    assert finding.message == "must be at most 2147483647, got 2147483648"


def test_every_problem_of_an_object_is_reported_once() -> None:
    d = deployment(replica=3, replicas="3")
    d["metadata"]["labelz"] = {}
    paths = [f.field_path for f in check(d)]
    assert sorted(paths) == ["metadata.labelz", "spec.replica", "spec.replicas"]


def test_label_keys_in_field_paths_are_quoted() -> None:
    d = deployment()
    d["metadata"]["labels"]["app.kubernetes.io/name"] = 7
    [finding] = check(d)
    assert finding.field_path == 'metadata.labels["app.kubernetes.io/name"]'


def test_null_quantity_is_an_error() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = None
    [finding] = check(d)
    assert finding.message == "expected a string or a number, got null"


@pytest.mark.parametrize("metadata", [None, 1.5, ["web"]])
def test_malformed_metadata_is_a_finding_not_a_crash(metadata: object) -> None:
    d = deployment()
    d["metadata"] = metadata
    [finding] = check(d)
    assert finding.subject == "Deployment/?"
    assert finding.field_path in ("metadata", "metadata.name")


def test_missing_kind_is_a_finding_not_a_crash() -> None:
    d = deployment()
    del d["kind"]
    [finding] = check(d)
    assert finding.message == "apiVersion and kind must be strings"


def test_field_path_formatting() -> None:
    assert field_path(["spec", "containers", 0, "image"]) == "spec.containers[0].image"
    assert field_path([]) == ""


# --- kinds and versions -----------------------------------------------------------


def test_unknown_kind_names_the_kubernetes_version() -> None:
    body = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    [finding] = check(body)
    assert finding.subject == "Widget/w"
    assert finding.message == (
        "unknown kind Widget in example.com/v1 for Kubernetes 1.33 (no CRD in the fleet defines it)"
    )


def test_removed_api_version_points_to_the_served_one() -> None:
    pdb = copy.deepcopy(VALID["PodDisruptionBudget"])
    pdb["apiVersion"] = "policy/v1beta1"
    [finding] = check(pdb)
    assert "unknown kind PodDisruptionBudget in policy/v1beta1 for Kubernetes 1.33" in (
        finding.message
    )
    assert finding.message.endswith("PodDisruptionBudget is served as policy/v1")


def test_a_group_named_like_a_builtin_is_not_mistaken_for_it() -> None:
    body = deployment()
    body["apiVersion"] = "apps.example.com/v1"
    [finding] = check(body)
    assert finding.message.startswith("unknown kind Deployment in apps.example.com/v1")


def test_sidecar_restart_policy_exists_in_1_33_but_not_1_27() -> None:
    d = deployment()
    d["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "proxy", "image": "proxy:1", "restartPolicy": "Always"}
    ]
    assert check(d, version="1.33") == []
    [finding] = check(d, version="1.27")
    assert finding.field_path == "spec.template.spec.initContainers[0].restartPolicy"
    assert finding.message.startswith("unknown field 'restartPolicy'")


def test_kind_added_after_1_27_is_unknown_there() -> None:
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "replicas"},
        "spec": {"validations": [{"expression": "object.spec.replicas <= 5"}]},
    }
    assert check(body, version="1.33") == []
    [finding] = check(body, version="1.27")
    assert finding.message.startswith("unknown kind ValidatingAdmissionPolicy")


def test_patch_releases_use_their_minor_schemas() -> None:
    assert resolve_version("v1.33.4") == "1.33"
    assert KubernetesSchemas("1.33.4").version == "1.33"


def test_unsupported_version_is_one_finding_against_the_fleet() -> None:
    with pytest.raises(UnsupportedVersionError):
        KubernetesSchemas("1.12")
    [finding] = check(VALID["ConfigMap"], version="1.99")
    assert finding.position == Position("fleet.yaml")
    assert "no Kubernetes schemas for version 1.99" in finding.message


def test_validators_are_compiled_once_per_kind_and_version() -> None:
    a = KubernetesSchemas("1.33").validator("apps/v1", "Deployment")
    b = KubernetesSchemas("1.33").validator("apps/v1", "Deployment")
    assert a is not None and a is b
    assert KubernetesSchemas("1.33").validator("apps/v1", "Nope") is None


# --- custom resources -------------------------------------------------------------


def test_custom_resource_valid_against_its_crd(etcd_crds: CrdSchemas) -> None:
    cr = etcd(pod={"resources": {"requests": {"cpu": 1, "memory": "512Mi"}}})
    assert check(cr, crds=etcd_crds) == []


def test_custom_resource_below_minimum(etcd_crds: CrdSchemas) -> None:
    [finding] = check(etcd(size=0), crds=etcd_crds)
    assert finding.subject == "EtcdCluster/payments/sessions"
    assert finding.field_path == "spec.size"
    assert finding.message == "must be at least 1, got 0"
    assert finding.position == SOURCE


def test_custom_resource_pattern_and_pruned_field(etcd_crds: CrdSchemas) -> None:
    findings = check(etcd(version="latest", sise=2), crds=etcd_crds)
    by_path = {f.field_path: f.message for f in findings}
    assert by_path["spec.sise"] == "unknown field 'sise' (did you mean 'size'?)"
    assert by_path["spec.version"].startswith('the string "latest" does not match the pattern')


def test_custom_resource_metadata_is_checked_as_object_meta(etcd_crds: CrdSchemas) -> None:
    cr = etcd()
    cr["metadata"]["label"] = {"a": "b"}
    [finding] = check(cr, crds=etcd_crds)
    assert finding.field_path == "metadata.label"


def test_custom_resource_without_a_crd_is_an_unknown_kind() -> None:
    [finding] = check(etcd())
    assert "no CRD in the fleet defines it" in finding.message


def test_custom_resource_of_an_unserved_version(etcd_crds: CrdSchemas) -> None:
    crd = yaml.safe_load(ETCD_CRD.read_text())
    old = copy.deepcopy(crd["spec"]["versions"][0])
    old.update(name="v1beta1", served=False, storage=False)
    crd["spec"]["versions"].append(old)
    cr = etcd()
    cr["apiVersion"] = "etcd.database.coreos.com/v1beta1"
    [finding] = check(cr, crds=CrdSchemas.from_documents([crd]))
    assert finding.message == (
        "CustomResourceDefinition/etcdclusters.etcd.database.coreos.com does not serve "
        "etcd.database.coreos.com/v1beta1; served: etcd.database.coreos.com/v1beta2"
    )


def test_crd_whose_schema_does_not_compile_is_reported_on_its_objects() -> None:
    crd = yaml.safe_load(ETCD_CRD.read_text())
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "version"
    ]["pattern"] = "(?<"
    [finding] = check(etcd(), crds=CrdSchemas.from_documents([crd]))
    assert finding.message.startswith(
        "the schema of CustomResourceDefinition/etcdclusters.etcd.database.coreos.com "
        "does not compile: "
    )
    assert "\n" not in finding.message


def test_non_crd_documents_are_ignored_by_from_documents() -> None:
    crds = CrdSchemas.from_documents([VALID["ConfigMap"], {"kind": "CustomResourceDefinition"}])
    assert crds.versions == {}


def _openapi_spec() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "port": {
                "x-kubernetes-int-or-string": True,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
            "note": {"type": "string", "nullable": True},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        },
    }


def _thing_crds() -> CrdSchemas:
    return CrdSchemas.from_documents(
        [
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "things.example.com"},
                "spec": {
                    "group": "example.com",
                    "scope": "Namespaced",
                    "names": {"kind": "Thing"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "schema": {
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "properties": {"spec": _openapi_spec()},
                                }
                            },
                        }
                    ],
                },
            }
        ]
    )


def thing(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": spec,
    }


def test_openapi_extensions_are_converted_to_json_schema() -> None:
    schema = crd_json_schema(
        {"type": "object", "properties": {"spec": _openapi_spec()}}, "example.com/v1", "Thing"
    )
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["port"]["type"] == ["integer", "string"]
    assert spec["properties"]["note"]["type"] == ["string", "null"]
    assert "additionalProperties" not in spec["properties"]["free"]
    assert spec["properties"]["ratio"] == {"type": "number", "exclusiveMinimum": 0}
    assert spec["properties"]["tags"]["x-specc-list-set"] is True


def test_custom_resource_with_openapi_extensions_passes_when_valid() -> None:
    ok = thing(port="http", note=None, free={"anything": [1, {"x": 2}]}, ratio=0.5, tags=["a"])
    assert check(ok, crds=_thing_crds()) == []


def test_custom_resource_with_openapi_extensions_fails_when_invalid() -> None:
    bad = check(thing(port=[1], ratio=0, tags=["a", "a"]), crds=_thing_crds())
    assert {f.field_path: f.message for f in bad} == {
        "spec.port": "expected an integer or a string, got a list",
        "spec.ratio": "must be greater than 0, got 0",
        "spec.tags[1]": 'Duplicate value: "a" (the same as [0])',
    }


# --- render -----------------------------------------------------------------------


def test_check_render_raises_check_error_with_every_finding() -> None:
    render = ClusterRender(
        "prod-eu",
        "1.33",
        [obj(deployment(replica=1)), obj(VALID["Service"]), obj(deployment(replicas="x"))],
    )
    with pytest.raises(CheckError) as caught:
        check_render(render)
    assert len(caught.value.findings) == 2
    check_render(ClusterRender("prod-eu", "1.33", [obj(VALID["Service"])]))


# --- agreement with kubernetes-validate -------------------------------------------

names = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
images = st.builds(
    lambda repo, tag: f"{repo}:{tag}",
    st.from_regex(r"[a-z0-9]+(\.[a-z0-9]+)*(/[a-z0-9_-]+){1,2}", fullmatch=True),
    st.from_regex(r"[0-9]+\.[0-9]+\.[0-9]+", fullmatch=True),
)
ports = st.integers(min_value=1, max_value=65535)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=names,
    replicas=st.integers(min_value=0, max_value=1000),
    image=images,
    port=ports,
    target=st.one_of(ports, st.just("http")),
    surge=st.one_of(st.integers(min_value=0, max_value=10), st.just("25%")),
    typo=st.sampled_from([None, "replica", "imagePullPolcy"]),
)
def test_checker_agrees_with_kubernetes_validate_strict(
    name: str, replicas: int, image: str, port: int, target: object, surge: object, typo: str | None
) -> None:
    d = deployment(replicas=replicas, strategy={"rollingUpdate": {"maxSurge": surge}})
    d["metadata"]["name"] = name
    container = d["spec"]["template"]["spec"]["containers"][0]
    container["image"] = image
    container["ports"] = [{"name": "http", "containerPort": port}]
    container["readinessProbe"]["httpGet"]["port"] = target
    if typo == "replica":
        d["spec"]["replica"] = replicas
    elif typo == "imagePullPolcy":
        container["imagePullPolcy"] = "Always"
    ours = check(d)
    try:
        kubernetes_validate.validate(copy.deepcopy(d), "1.33.0", strict=True)
        theirs_valid = True
    except kubernetes_validate.ValidationError:
        theirs_valid = False
    assert (ours == []) == theirs_valid
    assert (ours == []) == (typo is None)


def test_real_prometheus_operator_crds_check_their_resources() -> None:
    from specc.compile.monitoring import operator_crds

    docs = operator_crds()
    crds = CrdSchemas.from_documents(docs)
    prometheus = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "Prometheus",
        "metadata": {"name": "team", "namespace": "payments"},
        "spec": {
            "replicas": 2,
            "retention": "15d",
            "serviceMonitorSelector": {"matchLabels": {"team": "payments"}},
            "resources": {"requests": {"memory": "2Gi", "cpu": "500m"}},
        },
    }
    assert check(prometheus, crds=crds) == []
    prometheus["spec"]["replica"] = 2
    [finding] = check(prometheus, crds=crds)
    assert finding.message == "unknown field 'replica' (did you mean 'replicas'?)"
    # The CRDs themselves are valid built-in objects.
    assert check(*docs, crds=crds) == []

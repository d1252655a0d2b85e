"""Object names are checked per kind as the API server checks them, at the spec line."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.names import name_problem
from specc.tenancy import _scopes
from tests.test_tenancy import errors, fleet, manifests

RBAC = "rbac.authorization.k8s.io"


@pytest.mark.parametrize(
    ("gk", "name", "refused"),
    [
        ("ConfigMap", "a.b-c", False),
        ("ConfigMap", "a" * 253, False),
        ("ConfigMap", "a" * 254, True),
        ("ConfigMap", "bad name", True),
        ("ConfigMap", "café", True),
        ("ConfigMap", "Upper", True),
        ("ConfigMap", "-lead", True),
        ("ConfigMap", "a..b", True),
        ("Namespace", "a.b", True),
        ("Namespace", "a" * 64, True),
        ("StatefulSet.apps", "db.primary", True),
        ("StatefulSet.apps", "a" * 63, False),
        ("Service", "1web", True),
        ("Service", "web-1", False),
        ("Service", "web.x", True),
        ("Deployment.apps", "web.v2", False),
        (f"ClusterRole.{RBAC}", "system:aggregate-to-edit", False),
        (f"RoleBinding.{RBAC}", "Any Thing", False),
        (f"Role.{RBAC}", "a/b", True),
        (f"Role.{RBAC}", "..", True),
        (f"Role.{RBAC}", "50%", True),
        ("CronJob.batch", "c" * 52, False),
        ("CronJob.batch", "c" * 53, True),
        ("IPAddress.networking.k8s.io", "10.0.0.1", False),
        ("IPAddress.networking.k8s.io", "fd00::1", False),
        ("IPAddress.networking.k8s.io", "fd00:0::1", True),
        ("IPAddress.networking.k8s.io", "ten", True),
        ("EtcdCluster.etcd.database.coreos.com", "../../../../escaped/PWNED", True),
        ("EtcdCluster.etcd.database.coreos.com", "my.cluster", False),
        ("ServiceMonitor.monitoring.coreos.com", "", True),
    ],
)
def test_names_per_kind(gk: str, name: str, refused: bool) -> None:
    assert bool(name_problem(gk, name)) is refused, name_problem(gk, name)


def test_every_built_in_kind_refuses_path_names_and_a_254_character_name() -> None:
    for gk in _scopes("1.36"):
        assert name_problem(gk, "../x"), gk
        assert name_problem(gk, "a/b"), gk
        if not gk.startswith(("Role.", "ClusterRole", "RoleBinding.", "CertificateSigning")):
            assert name_problem(gk, "a" * 254), gk


def test_a_crd_name_must_be_plural_dot_group() -> None:
    body = {"spec": {"group": "example.com", "names": {"plural": "widgets"}}}
    gk = "CustomResourceDefinition.apiextensions.k8s.io"
    assert not name_problem(gk, "widgets.example.com", body)
    assert "widgets.example.com" in name_problem(gk, "gadgets.example.com", body)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ("{apiVersion: v1, kind: ConfigMap, metadata: {name: 'has space'}}", "RFC 1123 subdomain"),
        (
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: '../../../../escaped/PWNED'}}",
            "may not contain '/'",
        ),
        (
            "{apiVersion: v1, kind: Secret, metadata: {name: 'ünïcode'}, type: Opaque}",
            "RFC 1123 subdomain",
        ),
        (
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: " + "x" * 254 + "}}",
            "no more than 253",
        ),
        (
            "{apiVersion: v1, kind: Service, metadata: {name: 9lives}, spec: {ports: [{port: 80}]}}",
            "DNS-1035",
        ),
        ("{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: a.b}}", "RFC 1123 label"),
    ],
)
def test_a_manifests_name_the_api_server_refuses_fails_validate_at_the_name(
    tmp_path: Path, obj: str, message: str
) -> None:
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(f"- {obj}\n")})
    found = [e for e in errors(root) if "metadata.name" in e]
    assert found and found[0].startswith("apps/alpha/raw.yaml:6:") and message in found[0], found


def test_a_custom_resource_name_is_checked_at_the_apps_name(tmp_path: Path) -> None:
    crd = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: widgets.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n"
        "  names: {kind: Widget, plural: widgets}\n"
        "  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: "
        "{type: object, x-kubernetes-preserve-unknown-fields: true}}}]\n"
    )
    app = (
        "apiVersion: specc.dev/v1alpha1\nkind: CustomResource\n"
        "metadata: {name: w, team: alpha}\nspec: {apiVersion: example.com/v1, kind: Widget, spec: {}}\n"
    )
    root = fleet(tmp_path, {"crds/w.yaml": crd, "apps/alpha/w.yaml": app})
    from specc.pipeline import render_path

    (render,) = render_path(root)[1]
    assert any(o.kind == "Widget" for o in render.objects)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ("{name: a, labels: {'bad key': x}}", "label key 'bad key' is not valid"),
        (
            "{name: a, labels: {tier: 'front end'}}",
            "label value 'front end' of 'tier' is not valid",
        ),
        ("{name: a, labels: {tier: " + "v" * 64 + "}}", "is not valid"),
        ("{name: a, labels: {'Bad_Prefix/x': y}}", "has an invalid prefix"),
        ("{name: a, annotations: {'-lead': anything}}", "annotation key '-lead' is not valid"),
    ],
)
def test_labels_and_annotations_the_api_server_refuses_fail_at_their_key(
    tmp_path: Path, metadata: str, message: str
) -> None:
    obj = f"- {{apiVersion: v1, kind: ConfigMap, metadata: {metadata}}}\n"
    found = errors(fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(obj)}))
    assert any(e.startswith("apps/alpha/raw.yaml:6:") and message in e for e in found), found


def test_long_annotation_values_and_empty_label_values_pass(tmp_path: Path) -> None:
    from specc.pipeline import render_path

    obj = (
        "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, labels: {x: ''}, annotations: {n: "
        + "z" * 5000
        + "}}}\n"
    )
    render_path(fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(obj)}))

"""Overrides cannot bypass checks: what runs on the base runs on every cluster's merged app."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.test_tenancy import errors, fleet

FLEET2 = """\
apiVersion: specc.dev/v1alpha1
kind: Fleet
metadata: {name: t}
spec:
  environments: [{name: dev}, {name: prod}]
  clusters:
    - {name: d1, environment: dev}
    - {name: p1, environment: prod}
"""


def app(override: str, where: str = "environments:\n    prod") -> str:
    return (
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\n"
        "metadata: {name: raw, team: alpha}\n"
        "spec:\n  objects:\n    - {apiVersion: v1, kind: ConfigMap, metadata: {name: ok}}\n"
        f"overrides:\n  {where}:\n" + textwrap.indent(textwrap.dedent(override), "      ")
    )


def run(tmp_path: Path, text: str) -> list[str]:
    root = fleet(tmp_path, {"fleet.yaml": FLEET2, "apps/alpha/raw.yaml": text})
    return errors(root)


SECRET = "objects:\n  - {apiVersion: v1, kind: Secret, metadata: {name: s}, stringData: {password: hunter2}}\n"


@pytest.mark.parametrize("where", ["environments:\n    prod", "clusters:\n    p1"])
def test_a_plaintext_secret_in_an_override_is_refused_at_its_line(
    tmp_path: Path, where: str
) -> None:
    found = run(tmp_path, app(SECRET, where))
    assert len(found) == 1, found
    assert found[0].startswith("apps/alpha/raw.yaml:11:")
    assert "a Secret with values does not belong in git" in found[0]
    assert "hunter2" not in found[0]


def test_an_override_of_files_is_an_error_not_ignored(tmp_path: Path) -> None:
    found = run(tmp_path, app("files: [more.yaml]\n"))
    assert any(
        e.startswith("apps/alpha/raw.yaml:10:7: overrides.environments.prod.files: ")
        and "cannot change files" in e
        for e in found
    ), found


def test_an_override_into_another_teams_namespace_is_refused_at_the_override(
    tmp_path: Path,
) -> None:
    override = (
        "objects:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: x, namespace: beta}}\n"
    )
    found = run(tmp_path, app(override))
    assert found == [
        "apps/alpha/raw.yaml:11:11: ConfigMap/beta/x: namespace 'beta' belongs to another team "
        "('beta'); team 'alpha' may only write to 'alpha'"
    ]


def test_an_override_adding_a_cluster_admin_binding_is_refused(tmp_path: Path) -> None:
    override = """\
        objects:
          - apiVersion: rbac.authorization.k8s.io/v1
            kind: ClusterRoleBinding
            metadata: {name: root}
            roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
            subjects: [{kind: Group, name: alpha, apiGroup: rbac.authorization.k8s.io}]
    """
    found = run(tmp_path, app(override, "clusters:\n    p1"))
    assert any("ClusterRoleBinding/root" in e and "not granted" in e for e in found), found


def test_an_override_name_the_api_server_refuses_is_refused_at_the_override(tmp_path: Path) -> None:
    override = "objects:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: 'Not Valid'}}\n"
    found = run(tmp_path, app(override))
    assert any(e.startswith("apps/alpha/raw.yaml:11:") and "RFC 1123" in e for e in found), found


def test_a_prometheus_rule_in_an_override_gets_the_promql_check(tmp_path: Path) -> None:
    override = """\
        objects:
          - apiVersion: monitoring.coreos.com/v1
            kind: PrometheusRule
            metadata: {name: r}
            spec:
              groups:
                - name: g
                  rules:
                    - {alert: A, expr: 'summ(up)'}
    """
    found = run(tmp_path, app(override))
    assert any("summ" in e and e.startswith("apps/alpha/raw.yaml:") for e in found), found


def test_a_service_override_into_a_plaintext_value_stays_checked(tmp_path: Path) -> None:
    svc = (
        "apiVersion: specc.dev/v1alpha1\nkind: Service\nmetadata: {name: web, team: alpha}\n"
        "spec:\n  image: ghcr.io/acme/web:1.0.0\n  replicas: 1\n"
        "overrides:\n  environments:\n    prod:\n      image: ghcr.io/acme/web:latest\n"
    )
    root = fleet(tmp_path, {"fleet.yaml": FLEET2, "apps/alpha/web.yaml": svc})
    found = errors(root)
    assert any(e.startswith("apps/alpha/web.yaml:10:") and "latest" in e for e in found), found


def test_an_overrides_duplicate_rule_warns_at_the_override(tmp_path: Path) -> None:
    stack = (
        "apiVersion: specc.dev/v1alpha1\nkind: MonitoringStack\nmetadata: {name: mon, team: alpha}\n"
        "spec:\n  prometheus: {storage: {size: 1Gi}}\n"
        "  rules:\n    groups:\n      - name: g\n        rules:\n          - {record: 'x:y', expr: up}\n"
        "overrides:\n  environments:\n    prod:\n      rules:\n        groups:\n"
        "          - name: g\n            rules:\n"
        "              - {record: 'x:y', expr: up}\n              - {record: 'x:y', expr: up}\n"
    )
    from specc.pipeline import validate_path

    root = fleet(tmp_path, {"fleet.yaml": FLEET2, "apps/alpha/mon.yaml": stack})
    warnings = [str(f) for f in validate_path(root).warnings]
    assert any(
        w.startswith("apps/alpha/mon.yaml:19:") and "overrides.environments.prod.rules" in w
        for w in warnings
    ), warnings

"""The selector check: every selector of a render against what it selects, at its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.check.selectors import matches
from specc.errors import FleetError
from specc.pipeline import render_path
from tests.test_tenancy import fleet, manifests

DEPLOYMENT = """\
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: exporter, labels: {app.kubernetes.io/name: exporter}}
  spec:
    selector: {matchLabels: {app.kubernetes.io/name: exporter}}
    template:
      metadata: {labels: {app.kubernetes.io/name: exporter, app.kubernetes.io/component: metrics}}
      spec:
        securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
        containers:
          - name: exporter
            image: ghcr.io/acme/exporter:1.2.3
            resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 32Mi}}
            securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"""
SERVICE = """\
- apiVersion: v1
  kind: Service
  metadata: {name: exporter, labels: {app.kubernetes.io/name: exporter}}
  spec:
    selector: {app.kubernetes.io/name: SELECTED}
    ports: [{name: metrics, port: 9100}]
"""
MONITOR = """\
- apiVersion: monitoring.coreos.com/v1
  kind: ServiceMonitor
  metadata: {name: exporter}
  spec:
    selector: {matchLabels: {app.kubernetes.io/name: MONITORED}}
    endpoints: [{port: metrics}]
"""


def render(tmp_path: Path, objects: str, **files: str) -> tuple[list[str], list[str]]:
    """Return (errors, selector warnings) of validating a fleet with team alpha's objects."""
    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(objects), **files})
    try:
        valid, _ = render_path(root)
    except FleetError as exc:
        return [str(f) for f in exc.findings], []
    return [], [
        str(f) for f in valid.warnings if "select" in f.message or "scaleTargetRef" in f.message
    ]


def upstream(selected: str = "exporter", monitored: str = "exporter") -> str:
    return (
        DEPLOYMENT + SERVICE.replace("SELECTED", selected) + MONITOR.replace("MONITORED", monitored)
    )


def test_an_upstream_style_set_selecting_by_app_kubernetes_io_name_still_matches(
    tmp_path: Path,
) -> None:
    assert render(tmp_path, upstream()) == ([], [])


def test_a_service_monitor_selecting_nothing_is_flagged_at_its_selector(tmp_path: Path) -> None:
    errors, warnings = render(tmp_path, upstream(monitored="nothing"))
    assert errors == []
    (found,) = warnings
    assert found.startswith("apps/alpha/raw.yaml:30:9: ")
    assert (
        "ServiceMonitor/alpha/exporter: spec.selector: selector {app.kubernetes.io/name=nothing}"
        in found
    )
    assert "selects no Service of the render in 'alpha'" in found


def test_a_service_selecting_no_pod_is_flagged_at_its_selector(tmp_path: Path) -> None:
    errors, warnings = render(tmp_path, upstream(selected="exporterr", monitored="exporter"))
    (found,) = warnings
    assert errors == [] and found.startswith("apps/alpha/raw.yaml:24:")
    assert "selects no pod of the render in namespace 'alpha' (nothing specc deploys there" in found


def test_a_selector_picking_another_apps_pods_is_a_warning(tmp_path: Path) -> None:
    other = manifests(DEPLOYMENT, name="other")
    errors, warnings = render(
        tmp_path, SERVICE.replace("SELECTED", "exporter"), **{"apps/alpha/other.yaml": other}
    )
    assert errors == []
    (found,) = warnings
    assert "selects pods of another app: Manifests/alpha/other" in found


def test_a_selector_where_an_operator_may_make_the_pods_is_a_warning(tmp_path: Path) -> None:
    crd = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        "metadata: {name: dbs.example.com}\nspec:\n  group: example.com\n  scope: Namespaced\n"
        "  names: {kind: Db, plural: dbs}\n"
        "  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: "
        "{type: object, x-kubernetes-preserve-unknown-fields: true}}}]\n"
    )
    db = "- {apiVersion: example.com/v1, kind: Db, metadata: {name: db}, spec: {}}\n"
    errors, warnings = render(
        tmp_path, db + SERVICE.replace("SELECTED", "db"), **{"crds/db.yaml": crd}
    )
    assert errors == [] and len(warnings) == 1
    assert "(its pods may come from outside the render)" in warnings[0]


def test_a_network_policy_and_pdb_selecting_nothing_are_flagged(tmp_path: Path) -> None:
    extra = """\
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: np}
  spec: {podSelector: {matchLabels: {tier: web}}, policyTypes: [Ingress]}
- apiVersion: policy/v1
  kind: PodDisruptionBudget
  metadata: {name: pdb}
  spec:
    maxUnavailable: 1
    selector: {matchExpressions: [{key: app.kubernetes.io/name, operator: In, values: [gone]}]}
"""
    _, errors = render(tmp_path, upstream() + extra)
    assert len(errors) == 2, errors
    assert any("NetworkPolicy/alpha/np: spec.podSelector" in e for e in errors)
    assert any(
        "PodDisruptionBudget/alpha/pdb: spec.selector: selector {app.kubernetes.io/name In ['gone']}"
        in e
        for e in errors
    )


def test_an_autoscaler_targeting_a_missing_workload_is_flagged(tmp_path: Path) -> None:
    hpa = """\
- apiVersion: autoscaling/v2
  kind: HorizontalPodAutoscaler
  metadata: {name: hpa}
  spec:
    scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: exportr}
    minReplicas: 1
    maxReplicas: 2
"""
    _, warnings = render(tmp_path, upstream() + hpa)
    (found,) = warnings
    assert (
        "HorizontalPodAutoscaler/alpha/hpa: spec.scaleTargetRef: scaleTargetRef Deployment/exportr"
        in found
    )


def test_the_example_fleets_selectors_all_match(tmp_path: Path) -> None:
    from tests.helpers import FLEET

    valid, _ = render_path(FLEET)
    assert not [f for f in valid.warnings if "select" in f.message or "scaleTargetRef" in f.message]


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "1", "b": "2"}, True),
        ({"matchLabels": {"a": "1"}}, {"a": "2"}, False),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "2"]}]},
            {"a": "2"},
            True,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, {}, True),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]},
            {"a": "1"},
            False,
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {"a": ""}, False),
    ],
)
def test_label_selector_semantics(selector: dict, labels: dict, selected: bool) -> None:
    assert matches(selector, labels) is selected


def test_validate_prints_a_selector_warning_at_its_line_and_exits_0(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from specc.cli import cli

    root = fleet(tmp_path, {"apps/alpha/raw.yaml": manifests(upstream(monitored="nothing"))})
    result = CliRunner().invoke(cli, ["validate", str(root)])
    assert result.exit_code == 0, result.output
    assert (
        "apps/alpha/raw.yaml:30:9: warning: ServiceMonitor/alpha/exporter: spec.selector:"
        in result.output
    )

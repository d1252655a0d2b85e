"""Manifests keep their meaning: the author's labels, List kinds, errors at each object's line."""

from __future__ import annotations

from pathlib import Path

import pytest

from specc.errors import CheckError, ValidationError
from specc.pipeline import render_path, validate_path
from tests.render_helpers import compile_path, find, write_fleet

MONITORED = """\
apiVersion: specc.dev/v1alpha1
kind: MonitoringStack
metadata: {name: mon, team: team-a}
spec:
  prometheus: {replicas: 1, storage: {size: 1Gi}}
"""

#: An upstream-style exporter set: every object labels itself, the ServiceMonitor selects
#: the Service and the Service the pods by ``app.kubernetes.io/name``.
UPSTREAM = """\
apiVersion: v1
kind: Service
metadata:
  name: exporter
  labels:
    app.kubernetes.io/name: node-exporter
    app.kubernetes.io/part-of: kube-prometheus
    app.kubernetes.io/instance: main
spec:
  selector: {app.kubernetes.io/name: node-exporter}
  ports: [{name: metrics, port: 9100, targetPort: metrics}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: exporter
  labels: {app.kubernetes.io/name: node-exporter, app.kubernetes.io/managed-by: kustomize}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: node-exporter}}
  template:
    metadata: {labels: {app.kubernetes.io/name: node-exporter}}
    spec:
      containers:
        - name: exporter
          image: quay.io/prometheus/node-exporter:v1.8.2
          ports: [{name: metrics, containerPort: 9100}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: exporter
  labels: {app.kubernetes.io/name: node-exporter}
spec:
  selector:
    matchLabels: {app.kubernetes.io/name: node-exporter, app.kubernetes.io/part-of: kube-prometheus}
  endpoints: [{port: metrics}]
"""


def _upstream_fleet(tmp_path: Path) -> Path:
    return write_fleet(
        tmp_path,
        {
            "apps/mon.yaml": MONITORED,
            "apps/exporter.yaml": """\
                apiVersion: specc.dev/v1alpha1
                kind: Manifests
                metadata: {name: exporter-set, team: team-a}
                spec:
                  files: [../upstream/exporter.yaml]
            """,
            "upstream/exporter.yaml": UPSTREAM,
        },
    )


def test_an_upstream_manifest_set_keeps_its_labels_and_its_servicemonitor_still_matches(
    tmp_path: Path,
) -> None:
    _, renders = render_path(_upstream_fleet(tmp_path), ["dev"])
    render = renders[0]
    svc = find(render, "Service", "exporter").body
    labels = svc["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "node-exporter"
    assert labels["app.kubernetes.io/part-of"] == "kube-prometheus"
    assert labels["app.kubernetes.io/instance"] == "main"
    # What the object leaves unset, specc fills in; its own keys it always sets.
    assert labels["app.kubernetes.io/managed-by"] == "specc"
    assert labels["specc.dev/team"] == "team-a"
    assert svc["metadata"]["annotations"]["specc.dev/source"].startswith("upstream/exporter.yaml#")
    deploy = find(render, "Deployment", "exporter").body
    assert deploy["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kustomize"
    assert deploy["metadata"]["labels"]["app.kubernetes.io/part-of"] == "team-a"
    # The pod template is the author's, untouched.
    assert deploy["spec"]["template"]["metadata"]["labels"] == {
        "app.kubernetes.io/name": "node-exporter"
    }
    monitor = find(render, "ServiceMonitor", "exporter").body
    wanted = monitor["spec"]["selector"]["matchLabels"]
    assert all(labels.get(k) == v for k, v in wanted.items())


def test_list_kinds_are_flattened_into_their_items(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/lists.yaml": """\
                apiVersion: specc.dev/v1alpha1
                kind: Manifests
                metadata: {name: lists, team: team-a}
                spec:
                  files: [../upstream/lists.yaml]
                  objects:
                    - apiVersion: v1
                      kind: List
                      items:
                        - {apiVersion: v1, kind: ConfigMap, metadata: {name: inline-a}, data: {a: "1"}}
                        - apiVersion: v1
                          kind: List
                          items:
                            - {apiVersion: v1, kind: ConfigMap, metadata: {name: nested}}
            """,
            "upstream/lists.yaml": """\
                apiVersion: v1
                kind: ConfigMapList
                items:
                  - {apiVersion: v1, kind: ConfigMap, metadata: {name: from-file}}
                ---
                apiVersion: rbac.authorization.k8s.io/v1
                kind: RoleBindingList
                metadata: {resourceVersion: ""}
                items:
                  - apiVersion: rbac.authorization.k8s.io/v1
                    kind: RoleBinding
                    metadata: {name: reader}
                    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
                    subjects: [{kind: Group, name: readers, apiGroup: rbac.authorization.k8s.io}]
            """,
        },
    )
    _, renders = render_path(root, ["dev"])
    render = renders[0]
    names = {(o.kind, o.name) for o in render.objects if o.origin == "Manifests/team-a/lists"}
    assert names == {
        ("ConfigMap", "inline-a"),
        ("ConfigMap", "nested"),
        ("ConfigMap", "from-file"),
        ("RoleBinding", "reader"),
    }
    assert not any(o.kind.endswith("List") for o in render.objects)
    binding = find(render, "RoleBinding", "reader")
    assert binding.namespace == "team-a"
    assert str(binding.source) == "upstream/lists.yaml:10:5"
    assert str(find(render, "ConfigMap", "nested").source) == "apps/lists.yaml:14:15"


def test_a_list_whose_items_are_not_a_list_is_refused_at_its_line(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/lists.yaml": """\
                apiVersion: specc.dev/v1alpha1
                kind: Manifests
                metadata: {name: lists, team: team-a}
                spec:
                  objects:
                    - apiVersion: v1
                      kind: List
                      items: {apiVersion: v1, kind: ConfigMap}
            """,
        },
    )
    with pytest.raises(ValidationError) as info:
        validate_path(root)
    (f,) = info.value.findings
    assert str(f) == "apps/lists.yaml:8:14: spec.objects[0]: items must be a list"


def test_check_errors_of_manifests_point_at_the_objects_own_line_and_field(
    tmp_path: Path,
) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/m.yaml": """\
                apiVersion: specc.dev/v1alpha1
                kind: Manifests
                metadata: {name: m, team: team-a}
                spec:
                  files: [../upstream/set.yaml]
            """,
            "upstream/set.yaml": """\
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: fine}
                ---
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: broken}
                spec:
                  selector: {matchLabels: {app: x}}
                  template:
                    metadata: {labels: {app: x}}
                    spec:
                      containers:
                        - name: x
                          image: example/x:1
                          ports:
                            - containerPort: "eighty"
                          imagePullPolcy: Always
            """,
        },
    )
    with pytest.raises(CheckError) as info:
        render_path(root, ["dev"])
    got = {(f.position.line, f.field_path) for f in info.value.findings}
    assert got == {
        (17, "spec.template.spec.containers[0].ports[0].containerPort"),
        (18, "spec.template.spec.containers[0].imagePullPolcy"),
    }
    assert all(f.position.path == "upstream/set.yaml" for f in info.value.findings)


def test_an_unknown_kind_in_manifests_is_reported_at_its_kind_line(tmp_path: Path) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/m.yaml": """\
                apiVersion: specc.dev/v1alpha1
                kind: Manifests
                metadata: {name: m, team: team-a}
                spec:
                  objects:
                    - apiVersion: v1
                      kind: ConfigMap
                      metadata: {name: ok}
                    - apiVersion: example.com/v1
                      kind: Widget
                      metadata: {name: w}
            """,
        },
    )
    with pytest.raises(CheckError) as info:
        render_path(root, ["dev"])
    (f,) = info.value.findings
    assert (f.position.line, f.position.column) == (10, 7)
    assert "unknown kind Widget" in f.message


def test_check_errors_of_a_custom_resource_point_at_the_field_in_its_spec(tmp_path: Path) -> None:
    crd = (Path(__file__).resolve().parents[1] / "fleet" / "crds").glob("*.yaml")
    files = {f"crds/{p.name}": p.read_text(encoding="utf-8") for p in crd}
    files["apps/etcd.yaml"] = """\
        apiVersion: specc.dev/v1alpha1
        kind: CustomResource
        metadata: {name: etcd, team: team-a}
        spec:
          apiVersion: etcd.database.coreos.com/v1beta2
          kind: EtcdCluster
          spec:
            version: 3.5.15
            size: three
    """
    root = write_fleet(tmp_path, files)
    with pytest.raises(CheckError) as info:
        render_path(root, ["dev"])
    (f,) = info.value.findings
    assert (f.position.path, f.position.line) == ("apps/etcd.yaml", 9)
    assert f.field_path == "spec.size"


def test_labels_from_the_app_metadata_fill_only_what_the_object_leaves_unset(
    tmp_path: Path,
) -> None:
    root = write_fleet(
        tmp_path,
        {
            "apps/m.yaml": """\
                apiVersion: specc.dev/v1alpha1
                kind: Manifests
                metadata: {name: m, team: team-a, labels: {tier: backend, cost: shared}}
                spec:
                  objects:
                    - apiVersion: v1
                      kind: ConfigMap
                      metadata: {name: c, labels: {tier: frontend, specc.dev/team: forged}}
            """,
        },
    )
    labels = find(compile_path(root)["dev"], "ConfigMap", "c").body["metadata"]["labels"]
    assert labels["tier"] == "frontend"
    assert labels["cost"] == "shared"
    assert labels["specc.dev/team"] == "team-a"

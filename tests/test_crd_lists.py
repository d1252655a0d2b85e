"""CRD list semantics (x-kubernetes-list-type set and map) and the bundled operator CRDs."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from click.testing import CliRunner

from specc.check import CrdSchemas, check_objects
from specc.cli import cli
from specc.compile.monitoring import operator_crds
from specc.objects import DesiredObject
from tests.helpers import line_of, write

RAW = "apps/storefront/raw.yaml"


def validate(root: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", str(root)])
    return result.exit_code, result.stdout + result.stderr


def manifests(*objects: str) -> str:
    body = "".join(objects)
    return (
        "apiVersion: specc.dev/v1alpha1\nkind: Manifests\n"
        "metadata: {name: raw, team: storefront}\nspec:\n  objects:\n" + body
    )


PROMETHEUS = """\
    - apiVersion: monitoring.coreos.com/v1
      kind: Prometheus
      metadata: {name: extra}
      spec:
        enableFeatures: [exemplar-storage, memory-snapshot-on-shutdown, exemplar-storage]
        containers:
          - name: prometheus
            env:
              - {name: GOGC, value: "75"}
              - {name: GOMAXPROCS, value: "2"}
              - {name: GOGC, value: "100"}
            ports:
              - {containerPort: 9090, name: web}
              - {containerPort: 9090, protocol: TCP, name: web2}
"""


def test_duplicates_in_set_and_map_lists_of_a_bundled_crd_are_errors_at_the_repeated_item(
    fleet: Path,
) -> None:
    write(fleet, RAW, manifests(PROMETHEUS))
    code, out = validate(fleet)
    assert code == 1
    assert 'spec.enableFeatures[2]: Duplicate value: "exemplar-storage" (the same as [0])' in out
    assert (
        'spec.containers[0].env[2]: Duplicate value: {name="GOGC"} (the same keys as [0]; '
        "the list is a map keyed by name)"
    ) in out
    # protocol defaults to TCP, so both ports have the same keys.
    assert "spec.containers[0].ports[1]: Duplicate value: " in out
    assert out.count("Duplicate value") == 3, out


def test_unique_items_pass(fleet: Path) -> None:
    write(
        fleet,
        RAW,
        manifests(
            PROMETHEUS.replace(", exemplar-storage]", "]")
            .replace('{name: GOGC, value: "100"}', '{name: GOTRACEBACK, value: "all"}')
            .replace("protocol: TCP", "protocol: UDP")
        ),
    )
    code, out = validate(fleet)
    assert code == 0, out


WIDGETS = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                tags: {type: array, x-kubernetes-list-type: set, items: {type: string}}
                routes:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [host, port]
                  items:
                    type: object
                    required: [host]
                    properties:
                      host: {type: string}
                      port: {type: integer, default: 80}
                      backend: {type: string}
"""


def _widget(spec: dict[str, object]) -> DesiredObject:
    from specc.errors import Position

    body = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "ns"},
        "spec": spec,
    }
    return DesiredObject(body, Position("apps/w.yaml", 1, 1), "test")


def _check(spec: dict[str, object]) -> dict[str, str]:
    import yaml

    crds = CrdSchemas.from_documents([yaml.safe_load(WIDGETS)])
    return {f.field_path: f.message for f in check_objects([_widget(spec)], "1.33", crds)}


def test_a_list_map_with_two_keys_compares_both_and_fills_defaults() -> None:
    assert _check({"routes": [{"host": "a", "port": 80}, {"host": "a", "port": 81}]}) == {}
    assert _check({"routes": [{"host": "a"}, {"host": "a", "port": 80}]}) == {
        "spec.routes[1]": 'Duplicate value: {host="a", port=80} (the same keys as [0]; '
        "the list is a map keyed by host, port)"
    }


def test_a_set_of_strings_refuses_a_repeated_one() -> None:
    assert _check({"tags": ["a", "b"]}) == {}
    assert _check({"tags": ["a", "b", "a"]}) == {
        "spec.tags[2]": 'Duplicate value: "a" (the same as [0])'
    }


def test_a_crd_in_crds_replaces_the_bundled_one_of_the_same_name(fleet: Path) -> None:
    rule_crd = next(c for c in operator_crds() if c["spec"]["names"]["kind"] == "PrometheusRule")
    schema = rule_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["owner"] = {"type": "string"}
    write(fleet, "crds/prometheusrules.yaml", json.dumps(rule_crd))
    write(
        fleet,
        RAW,
        manifests(
            "    - apiVersion: monitoring.coreos.com/v1\n      kind: PrometheusRule\n"
            "      metadata: {name: r}\n      spec: {owner: storefront, groups: []}\n"
        ),
    )
    code, out = validate(fleet)
    assert code == 0, out
    (fleet / "crds/prometheusrules.yaml").unlink()
    code, out = validate(fleet)
    assert code == 1 and "unknown field 'owner'" in out


def test_an_alertmanager_config_with_a_bare_equals_matcher_loads_and_validates(
    fleet: Path,
) -> None:
    write(
        fleet,
        RAW,
        manifests(
            "    - apiVersion: monitoring.coreos.com/v1alpha1\n      kind: AlertmanagerConfig\n"
            "      metadata: {name: am}\n      spec:\n        route:\n          receiver: team\n"
            "          matchers:\n            - name: severity\n              matchType: =\n"
            "              value: critical\n        receivers: [{name: team}]\n"
        ),
    )
    code, out = validate(fleet)
    assert code == 0, out
    write(fleet, RAW, (fleet / RAW).read_text().replace("matchType: =", "matchType: ==="))
    code, out = validate(fleet)
    assert code == 1
    assert f"{RAW}:{line_of(fleet, RAW, 'matchType')}:" in out


def test_the_bundled_crds_are_the_upstream_ones_with_their_markers() -> None:
    crds = {c["spec"]["names"]["kind"]: c for c in operator_crds()}
    text = json.dumps(crds)
    for marker in ("x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type"):
        assert marker in text
    assert '"format": "int32"' in text and '"default": "TCP"' in text
    assert '"description"' not in json.dumps(
        crds["PrometheusRule"]["spec"]["versions"][0]["schema"]
    )
    folder = resources.files("specc") / "data" / "crds"
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    assert "tools/derive_prometheus_operator_crds.py" in index["generated"]
    assert "prometheus-operator" in index["generated"]
    assert {e["kind"] for e in index["crds"]} == set(crds)

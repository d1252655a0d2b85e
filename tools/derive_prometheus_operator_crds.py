"""Derive the prometheus-operator CRDs that specc ships from typed models of them.

specc checks every Prometheus, Alertmanager, AlertmanagerConfig, PrometheusRule,
ServiceMonitor and PodMonitor it renders against the CRD schema of that kind
(specc/data/crds/). The upstream CRD files are large (~1 MB with descriptions) and
cannot be fetched on these machines; PyPI can be reached, and the package
``cloudcoil-models-prometheus-operator`` holds pydantic models generated from those
very CRDs (one package version per operator version). This script turns the models'
JSON Schemas back into structural ``openAPIV3Schema`` CRDs: same fields, types,
required lists, enums, patterns and bounds; descriptions dropped.

Run it in a throw-away virtualenv (the models are not a dependency of specc):

    python3 -m venv /tmp/ccvenv
    /tmp/ccvenv/bin/pip install cloudcoil-models-prometheus-operator==0.80.1.0
    /tmp/ccvenv/bin/python tools/derive_prometheus_operator_crds.py specc/data/crds
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

OPERATOR_VERSION = "0.80.1"
PACKAGE = f"cloudcoil-models-prometheus-operator=={OPERATOR_VERSION}.0"

#: (module, class, plural, short names) of the kinds specc renders.
KINDS = (
    ("v1", "Prometheus", "prometheuses", ["prom"]),
    ("v1", "Alertmanager", "alertmanagers", ["am"]),
    ("v1", "PrometheusRule", "prometheusrules", ["promrule"]),
    ("v1", "ServiceMonitor", "servicemonitors", ["smon"]),
    ("v1", "PodMonitor", "podmonitors", ["pmon"]),
    ("v1alpha1", "AlertmanagerConfig", "alertmanagerconfigs", ["amcfg"]),
)

_KEEP = (
    "type",
    "format",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


def openapi(node: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """Return the structural OpenAPI v3 form of one pydantic JSON Schema node."""
    if depth > 60:
        raise RuntimeError("schema too deep (recursive model?)")
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return openapi(merged, defs, depth + 1)
    alternatives = node.get("anyOf") or node.get("oneOf")
    if alternatives:
        real = [_deref(a, defs) for a in alternatives if a.get("type") != "null"]
        if len(real) == 1:
            inner = {**{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}, **real[0]}
            return openapi(inner, defs, depth + 1)
        types = sorted(a.get("type", "") for a in real)
        if types == ["integer", "string"]:
            out: dict[str, Any] = {
                "anyOf": [{"type": "integer"}, {"type": "string"}],
                "x-kubernetes-int-or-string": True,
            }
            pattern = next((a["pattern"] for a in real if "pattern" in a), None)
            if pattern:
                out["pattern"] = pattern
            return out
        raise RuntimeError(f"unexpected union {alternatives}")
    if node.get("const") is not None and "enum" not in node:
        node = {**node, "enum": [node["const"]]}
    out = {k: node[k] for k in _KEEP if k in node}
    if "default" in node and node["default"] is not None:
        out["default"] = node["default"]
    kind = node.get("type")
    if kind is None and not node.get("properties") and "items" not in node:
        # Any: the generator's rendering of x-kubernetes-preserve-unknown-fields.
        return {"x-kubernetes-preserve-unknown-fields": True}
    if kind == "object" or "properties" in node or "additionalProperties" in node:
        out["type"] = "object"
        props = node.get("properties") or {}
        if props:
            out["properties"] = {
                name: openapi(sub, defs, depth + 1) for name, sub in sorted(props.items())
            }
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            out["additionalProperties"] = openapi(extra, defs, depth + 1)
        elif extra is True or extra == {} or (not props and extra is None):
            out["x-kubernetes-preserve-unknown-fields"] = True
        if node.get("required"):
            out["required"] = sorted(node["required"])
    if kind == "array" or "items" in node:
        out["type"] = "array"
        out["items"] = openapi(node.get("items") or {}, defs, depth + 1)
    return out


def _deref(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def crd(module: Any, cls_name: str, plural: str, short: list[str], version: str) -> dict[str, Any]:
    model = getattr(module, cls_name)
    schema = model.model_json_schema(by_alias=True)
    defs = schema.get("$defs", {})
    root = openapi(schema, defs)
    props = root["properties"]
    # The API server validates metadata itself; CRDs declare it as a bare object.
    props["metadata"] = {"type": "object"}
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    root["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "annotations": {"operator.prometheus.io/version": OPERATOR_VERSION},
            "name": f"{plural}.monitoring.coreos.com",
        },
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {
                "categories": ["prometheus-operator"],
                "kind": cls_name,
                "listKind": f"{cls_name}List",
                "plural": plural,
                "shortNames": short,
                "singular": cls_name.lower(),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": version,
                    "schema": {"openAPIV3Schema": root},
                    "served": True,
                    "storage": True,
                    **({"subresources": {"status": {}}} if "status" in props else {}),
                }
            ],
        },
    }


def main(out_dir: str) -> None:
    import importlib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for version, cls_name, plural, short in KINDS:
        module = importlib.import_module(f"cloudcoil.models.prometheus_operator.{version}")
        doc = crd(module, cls_name, plural, short, version)
        header = (
            f"# {cls_name} ({plural}.monitoring.coreos.com), prometheus-operator "
            f"v{OPERATOR_VERSION}.\n"
            "# Structural schema only: descriptions dropped. Derived from the models in\n"
            f"# {PACKAGE} (generated from the upstream CRDs) by\n"
            "# tools/derive_prometheus_operator_crds.py; do not edit, regenerate.\n"
        )
        text = yaml.safe_dump(doc, sort_keys=True, width=100)
        (out / f"monitoring.coreos.com_{plural}.yaml").write_text(header + text, encoding="utf-8")
        print(out / f"monitoring.coreos.com_{plural}.yaml")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "specc/data/crds")

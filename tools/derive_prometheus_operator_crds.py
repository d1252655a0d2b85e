"""Write specc/data/crds/: the prometheus-operator CRDs specc renders, from the upstream files.

The CRDs are taken from the Go module github.com/prometheus-operator/prometheus-operator
(example/prometheus-operator-crd/, the files the project releases), fetched with the Go
toolchain from the Go module proxy. Every schema keyword is kept as upstream writes it
(types, formats, patterns, enums, defaults, required lists, x-kubernetes-list-type,
-list-map-keys, -map-type, -int-or-string, -preserve-unknown-fields, CEL rules); only
``description`` texts are dropped. Each CRD is stored as compact JSON (read in
milliseconds, only when a resource of its kinds is checked) with an ``index.json`` of
names, kinds, scopes and versions that is all the other stages need.

    python3 tools/derive_prometheus_operator_crds.py [VERSION]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

MODULE = "github.com/prometheus-operator/prometheus-operator"
VERSION = "v0.85.0"
OUT = Path(__file__).resolve().parent.parent / "specc" / "data" / "crds"
#: The kinds specc renders (plural names).
PLURALS = (
    "alertmanagerconfigs",
    "alertmanagers",
    "podmonitors",
    "prometheuses",
    "prometheusrules",
    "servicemonitors",
)
#: Keys of a JSON-Schema-props node whose values are schema nodes (or maps/lists of them).
_NODE = ("items", "additionalProperties", "not")
_NODES = ("allOf", "anyOf", "oneOf")
_NODE_MAPS = ("properties", "patternProperties", "definitions", "dependencies")


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1's loader, but a bare ``=`` (AlertmanagerConfig's matchType enum) is text."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: node.value)


def module_dir(version: str) -> Path:
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{MODULE}@{version}"],
        check=True,
        capture_output=True,
        text=True,
    )
    return Path(json.loads(out.stdout)["Dir"])


def strip(node: Any) -> Any:
    """Return a schema node without ``description`` texts, at every level."""
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "description":
            continue
        if key in _NODE and isinstance(value, dict):
            out[key] = strip(value)
        elif key in _NODES and isinstance(value, list):
            out[key] = [strip(v) for v in value]
        elif key in _NODE_MAPS and isinstance(value, dict):
            out[key] = {name: strip(sub) for name, sub in value.items()}
        else:
            out[key] = value
    return out


def derive(crd: dict[str, Any]) -> dict[str, Any]:
    for version in crd["spec"]["versions"]:
        schema = version.get("schema") or {}
        if "openAPIV3Schema" in schema:
            schema["openAPIV3Schema"] = strip(schema["openAPIV3Schema"])
    return crd


def main(version: str) -> None:
    source = module_dir(version) / "example" / "prometheus-operator-crd"
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("monitoring.coreos.com_*"):
        old.unlink()
    generated = (
        f"tools/derive_prometheus_operator_crds.py from {MODULE} {version}, "
        "example/prometheus-operator-crd/ (descriptions dropped); do not edit, regenerate"
    )
    index = []
    for plural in PLURALS:
        path = source / f"monitoring.coreos.com_{plural}.yaml"
        crd = derive(yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader))
        name = f"monitoring.coreos.com_{plural}.json"
        (OUT / name).write_text(
            json.dumps({"generated": generated, "crd": crd}, separators=(",", ":"), sort_keys=True)
            + "\n",
            encoding="utf-8",
        )
        spec = crd["spec"]
        index.append(
            {
                "file": name,
                "group": spec["group"],
                "kind": spec["names"]["kind"],
                "name": crd["metadata"]["name"],
                "plural": spec["names"]["plural"],
                "scope": spec["scope"],
                "versions": [
                    {"name": v["name"], "served": v.get("served", True)} for v in spec["versions"]
                ],
            }
        )
        print(OUT / name)
    (OUT / "index.json").write_text(
        json.dumps({"generated": generated, "crds": index}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else VERSION)

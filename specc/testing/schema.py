"""Type metadata for structured-merge-diff, from the Kubernetes OpenAPI definitions.

Server-side apply merges by type: which lists are associative and by which keys, which
maps and structs are atomic. That metadata comes from the OpenAPI extensions
(``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``, ``x-kubernetes-map-type``,
``x-kubernetes-patch-merge-key``) shipped in the ``kubernetes-validate`` package, and
from a CRD's ``openAPIV3Schema`` for custom resources. The conversion follows
kube-openapi's ``schemaconv``: a list without ``x-kubernetes-list-type`` but with a
patch merge key is associative by that key; any other list defaults to atomic.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCALAR = 0
STRUCT = 1
MAP = 2
LIST = 3
UNTYPED = 4

# The Kubernetes OpenAPI marks these key fields with a default ("TCP"), and
# structured-merge-diff fills absent key fields from it when it builds list keys.
_KEY_DEFAULTS: dict[str, dict[str, Any]] = {
    "io.k8s.api.core.v1.ContainerPort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.ServicePort": {"protocol": "TCP"},
    "io.k8s.api.core.v1.EndpointPort": {"protocol": "TCP"},
    "io.k8s.api.discovery.v1.EndpointPort": {"protocol": "TCP"},
}

SCHEMA_VERSION = "v1.36.0"


class TypeNode:
    """One node of the type tree: a scalar, struct, map, list, or untyped (deduced) value."""

    __slots__ = (
        "atomic",
        "elem",
        "embedded",
        "fields",
        "key_defaults",
        "keys",
        "kind",
        "list_type",
        "name",
        "preserve_unknown",
        "raw",
        "required",
        "scalar",
    )

    def __init__(self, kind: int = UNTYPED, name: str = "") -> None:
        self.kind = kind
        self.name = name
        self.fields: dict[str, TypeNode] = {}
        self.elem: TypeNode | None = None
        self.atomic = False
        self.list_type = "atomic"
        self.keys: tuple[str, ...] = ()
        self.key_defaults: dict[str, Any] = {}
        self.scalar = "any"
        self.required: tuple[str, ...] = ()
        self.preserve_unknown = False
        self.embedded = False
        self.raw: dict[str, Any] = {}

    def child(self, key: str) -> TypeNode | None:
        """Return the type of field or map entry ``key``; None when the schema does not declare it."""
        if self.kind == STRUCT:
            node = self.fields.get(key)
            if node is not None:
                return node
            if self.elem is not None:
                return self.elem
            if self.preserve_unknown:
                return UNTYPED_NODE
            return None
        if self.kind == MAP:
            return self.elem
        if self.kind == UNTYPED:
            return UNTYPED_NODE
        return None

    def item(self) -> TypeNode:
        """Return the type of the items of a list (untyped when undeclared)."""
        return self.elem if self.elem is not None else UNTYPED_NODE

    def __repr__(self) -> str:
        kinds = ["scalar", "struct", "map", "list", "untyped"]
        return f"TypeNode({kinds[self.kind]}, {self.name or '-'})"


UNTYPED_NODE = TypeNode(UNTYPED, "untyped")


def _types(schema: dict[str, Any]) -> set[str]:
    value = schema.get("type")
    if isinstance(value, list):
        return {str(v) for v in value if v != "null"}
    if isinstance(value, str):
        return {value}
    return set()


class SchemaSet:
    """Type nodes for every definition of one Kubernetes OpenAPI version, built once."""

    def __init__(self, definitions: dict[str, dict[str, Any]]) -> None:
        self.definitions = definitions
        self.nodes: dict[str, TypeNode] = {name: TypeNode(name=name) for name in definitions}
        self.by_gvk: dict[tuple[str, str, str], str] = {}
        for name, schema in definitions.items():
            self._fill(self.nodes[name], schema, name)
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                self.by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = name

    def node_for(self, group: str, version: str, kind: str) -> TypeNode | None:
        """Return the root type of a built-in kind, or None when it is not defined."""
        name = self.by_gvk.get((group, version, kind))
        return self.nodes.get(name) if name else None

    def _ref(self, schema: dict[str, Any]) -> str | None:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return ref.rsplit("/", 1)[-1]
        return None

    def _convert(self, schema: dict[str, Any], hint: str) -> TypeNode:
        ref = self._ref(schema)
        if ref is not None:
            base = self.nodes[ref]
            map_type = schema.get("x-kubernetes-map-type")
            if map_type == "atomic" and not base.atomic:
                clone = TypeNode(base.kind, base.name)
                for slot in TypeNode.__slots__:
                    setattr(clone, slot, getattr(base, slot))
                clone.atomic = True
                return clone
            return base
        node = TypeNode(name=hint)
        self._fill(node, schema, hint)
        return node

    def _fill(self, node: TypeNode, schema: dict[str, Any], name: str) -> None:
        node.raw = schema
        if name == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            node.kind, node.scalar = SCALAR, "quantity"
            return
        if name == "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
            node.kind, node.scalar = SCALAR, "int-or-string"
            return
        types = _types(schema)
        if "properties" in schema:
            node.kind = STRUCT
            node.fields = {
                key: self._convert(sub, f"{name}.{key}")
                for key, sub in schema["properties"].items()
            }
            node.required = tuple(schema.get("required", ()))
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict):
                node.elem = self._convert(extra, f"{name}[*]")
            node.atomic = schema.get("x-kubernetes-map-type") == "atomic"
        elif isinstance(schema.get("additionalProperties"), dict):
            node.kind = MAP
            node.elem = self._convert(schema["additionalProperties"], f"{name}[*]")
            node.atomic = schema.get("x-kubernetes-map-type") == "atomic"
        elif "array" in types or "items" in schema:
            node.kind = LIST
            items = schema.get("items")
            node.elem = self._convert(items, f"{name}[]") if isinstance(items, dict) else None
            list_type = schema.get("x-kubernetes-list-type")
            merge_key = schema.get("x-kubernetes-patch-merge-key")
            strategy = str(schema.get("x-kubernetes-patch-strategy", ""))
            if list_type is None:
                if "merge" in strategy.split(","):
                    list_type = "map" if merge_key else "set"
                else:
                    list_type = "atomic"
            node.list_type = list_type
            if list_type == "map":
                keys = schema.get("x-kubernetes-list-map-keys") or (
                    [merge_key] if merge_key else []
                )
                node.keys = tuple(keys)
                item_name = self._ref(items) if isinstance(items, dict) else None
                node.key_defaults = dict(_KEY_DEFAULTS.get(item_name or "", {}))
        elif types & {"string", "integer", "number", "boolean"}:
            node.kind = SCALAR
            node.scalar = next(iter(sorted(types))) if len(types) == 1 else "any"
        elif "object" in types:
            node.kind = UNTYPED
        else:
            node.kind = UNTYPED


@cache
def builtin_schemas(version: str = SCHEMA_VERSION) -> SchemaSet:
    """Return the type tree of the built-in Kubernetes kinds (loaded once per process)."""
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    path = root / f"{version}-local-strict" / "_definitions.json"
    with path.open("rb") as handle:
        document = json.load(handle)
    return SchemaSet(document["$defs"])


def crd_node(schema: dict[str, Any], metadata: TypeNode) -> TypeNode:
    """Return the type tree of a custom resource from its CRD ``openAPIV3Schema``."""
    root = _crd_convert(schema, "cr")
    if root.kind != STRUCT:
        root = TypeNode(STRUCT, "cr")
        root.preserve_unknown = True
    fields = dict(root.fields)
    fields["metadata"] = metadata
    for key in ("apiVersion", "kind"):
        scalar = TypeNode(SCALAR, key)
        scalar.scalar = "string"
        fields[key] = scalar
    root.fields = fields
    return root


def _crd_convert(schema: dict[str, Any], name: str) -> TypeNode:
    node = TypeNode(name=name)
    node.raw = schema
    node.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    node.embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    if schema.get("x-kubernetes-int-or-string"):
        node.kind, node.scalar = SCALAR, "int-or-string"
        return node
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        extra = schema.get("additionalProperties")
        if "properties" in schema or not isinstance(extra, dict):
            node.kind = STRUCT
            node.fields = {
                key: _crd_convert(sub, f"{name}.{key}")
                for key, sub in schema.get("properties", {}).items()
            }
            node.required = tuple(schema.get("required", ()))
            if isinstance(extra, dict):
                node.elem = _crd_convert(extra, f"{name}[*]")
            elif extra is True:
                node.preserve_unknown = True
            if node.preserve_unknown and not node.fields and node.elem is None:
                node.kind = UNTYPED
        else:
            node.kind = MAP
            node.elem = _crd_convert(extra, f"{name}[*]")
        node.atomic = schema.get("x-kubernetes-map-type") == "atomic"
        return node
    if kind == "array":
        node.kind = LIST
        items = schema.get("items")
        node.elem = _crd_convert(items, f"{name}[]") if isinstance(items, dict) else None
        node.list_type = str(schema.get("x-kubernetes-list-type", "atomic"))
        if node.list_type == "map":
            node.keys = tuple(schema.get("x-kubernetes-list-map-keys", ()))
            if node.elem is not None:
                for key in node.keys:
                    sub = node.elem.fields.get(key)
                    if sub is not None and "default" in sub.raw:
                        node.key_defaults[key] = sub.raw["default"]
        return node
    if kind in ("string", "integer", "number", "boolean"):
        node.kind, node.scalar = SCALAR, str(kind)
        return node
    node.kind = UNTYPED
    return node

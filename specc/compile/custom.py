"""Renderers of ``CustomResource`` and ``Manifests``: objects given whole, placed and labelled."""

from __future__ import annotations

import copy
from typing import Any

from specc.compile.meta import AppContext, metadata
from specc.errors import Finding, Position
from specc.load import Document, SourceMap
from specc.manifests import manifest_objects
from specc.objects import DesiredObject, FieldSource
from specc.spec.apps import CustomResourceSpec, ManifestsSpec
from specc.tenancy import Scopes, group_kind

#: Label and annotation keys under this prefix are specc's own.
SPECC_PREFIX = "specc.dev/"


def object_shape_problems(obj: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Return where a raw object is not shaped like a Kubernetes object, and why.

    Objects given whole (inline, in files, in overrides) reach the renderer unchecked;
    the API server refuses a list where ObjectMeta has a map, and a renderer that read
    one anyway would crash or, worse, turn ``annotations: [ab]`` into ``{a: b}``.
    """
    if not isinstance(obj, dict):
        return [((), f"a Kubernetes object must be a mapping, not {_type_name(obj)}")]
    out: list[tuple[tuple[str | int, ...], str]] = []
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            out.append(((key,), f"object needs {key} (a non-empty string)"))
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        what = "is missing" if meta is None else f"must be a mapping, not {_type_name(meta)}"
        return [*out, (("metadata",), f"metadata {what}")]
    for key in ("name", "namespace", "generateName"):
        if key in meta and not isinstance(meta[key], str):
            out.append((("metadata", key), f"metadata.{key} must be a string"))
    if not meta.get("name") and not meta.get("generateName"):
        out.append((("metadata",), "object needs metadata.name"))
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            out.append(
                (
                    ("metadata", key),
                    f"metadata.{key} must be a mapping of strings to strings, "
                    f"not {_type_name(value)}",
                )
            )
            continue
        for k, v in value.items():
            if not isinstance(v, str):
                out.append(
                    (
                        ("metadata", key, k),
                        f"metadata.{key}[{k!r}] must be a string, not {_type_name(v)} "
                        "(quote the value)",
                    )
                )
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a string"


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _with_metadata(
    ctx: AppContext, obj: dict[str, Any], namespaced: bool, where: Position
) -> dict[str, Any]:
    """Return ``obj`` placed in the team's namespace, with specc's metadata added.

    The object's own labels win: selectors of the set it came from (a ServiceMonitor
    selecting Services by ``app.kubernetes.io/name``) must still match after render.
    specc's labels fill only the keys the object leaves unset, except those under
    ``specc.dev/``, which are specc's alone; its ``specc.dev/*`` annotations are always set.
    """
    body: dict[str, Any] = _tree_copy(obj)
    meta = body.get("metadata") or {}
    # An object naming a namespace keeps it: the tenancy check decides whether the team
    # may write there (a shared namespace fleet.yaml grants it), never a silent move.
    namespace = (meta.get("namespace") or ctx.namespace) if namespaced else None
    labels = _string_map(meta.get("labels"))
    for key, value in ctx.labels.items():
        if key.startswith(SPECC_PREFIX):
            labels[key] = value
        else:
            labels.setdefault(key, value)
    annotations = _string_map(meta.get("annotations"))
    new_meta = metadata(
        str(meta["name"]),
        namespace,
        labels,
        where,
        annotations,
        ctx.origin,
    )
    # Keep other metadata the author set (finalizers, ownerReferences are theirs to own).
    for key, value in meta.items():
        if key not in ("name", "namespace", "labels", "annotations"):
            new_meta[key] = value
    body["metadata"] = new_meta
    return body


def _tree_copy(value: Any) -> Any:
    """Return a copy of a loaded document: mappings, lists and immutable scalars.

    copy.deepcopy's memo and dispatch cost several times this, for shared or cyclic
    parts a loaded document never has; anything else still goes through it.
    """
    if isinstance(value, dict):
        return {k: _tree_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_tree_copy(v) for v in value]
    if value is None or isinstance(value, str | int | float):
        return value
    return copy.deepcopy(value)


def _string_map(value: Any) -> dict[str, Any]:
    # Validation refuses labels and annotations that are not mappings; stay total anyway.
    return dict(value) if isinstance(value, dict) else {}


#: Where a CustomResource's object fields are written in its app document.
_CUSTOM_RESOURCE_FIELDS = (
    ("apiVersion", ("spec", "apiVersion")),
    ("kind", ("spec", "kind")),
    ("metadata", ("metadata",)),
    ("spec", ("spec", "spec")),
)


def render_custom_resource(
    ctx: AppContext, spec: CustomResourceSpec, source: SourceMap, scopes: Scopes
) -> list[DesiredObject]:
    """Return the operator's resource as declared; the check stage validates it against its CRD."""
    namespaced = scopes.namespaced(group_kind(spec.api_version, spec.kind))
    obj = {
        "apiVersion": spec.api_version,
        "kind": spec.kind,
        "metadata": {"name": ctx.name},
        "spec": spec.spec,
    }
    where = source.value(())
    body = _with_metadata(ctx, obj, namespaced, where)
    fields = FieldSource(source, (), _CUSTOM_RESOURCE_FIELDS)
    return [DesiredObject(body, where, ctx.origin, fields)]


def render_manifests(
    ctx: AppContext,
    spec: ManifestsSpec,
    source: SourceMap,
    files: list[Document],
    scopes: Scopes,
) -> tuple[list[DesiredObject], list[Finding]]:
    """Return the raw objects, namespaced ones in the team's namespace unless they name one.

    Whether the team may declare them is the tenancy check's, after compile.
    """
    out: list[DesiredObject] = []
    findings: list[Finding] = []
    for item in manifest_objects(spec.objects, source, files):
        obj, src, loc, where = item.body, item.source, item.loc, item.position
        shape = object_shape_problems(obj)
        if shape:
            findings.extend(
                Finding(src.value((*loc, *path)), message, _dotted((*loc, *path)))
                for path, message in shape
            )
            continue
        namespaced = scopes.namespaced(group_kind(str(obj["apiVersion"]), str(obj["kind"])))
        body = _with_metadata(ctx, obj, namespaced, where)
        out.append(DesiredObject(body, where, ctx.origin, FieldSource(item.source, item.loc)))
    return out, findings

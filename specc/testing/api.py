"""The API semantics of the double, independent of HTTP: one call per request.

:class:`Cluster` holds the resource registry (built-ins and CRD-defined resources), the
object store and the write pipeline every mutating verb shares:

    decode (types, quantities) → merge / patch → field ownership → server fields
    → defaults → validation → no-op check → store

The order mirrors the real server's: the field manager runs on the decoded object,
defaulting follows, validation sees the defaulted object, and a write that changes
nothing (object and managedFields) is not stored, so its resourceVersion stays.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, cast

import yaml

from specc.testing import defaults, protobuf, ssa, validation
from specc.testing import status as st
from specc.testing.fieldpath import MEMBER, FieldSet
from specc.testing.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from specc.testing.quantity import QuantityError, canonical_quantity
from specc.testing.resources import BUILTIN_RESOURCES, GENERATION_KINDS, ResourceType, Subresource
from specc.testing.schema import (
    LIST,
    MAP,
    SCALAR,
    STRUCT,
    UNTYPED,
    TypeNode,
    builtin_schemas,
    crd_node,
)
from specc.testing.selectors import SelectorError, parse_field_selector, parse_label_selector
from specc.testing.store import Store

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
#: The text encodings a real server decodes create, update and delete bodies from.
_OBJECT_MEDIA_TYPES = ("application/json", "application/yaml")

# Server-owned metadata that no manager ever owns (fieldmanager's StripMeta).
_STRIPPED_META = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_M: FieldSet = {MEMBER: {}}
_IGNORE_BASE: FieldSet = {
    "f:apiVersion": _M,
    "f:kind": _M,
    "f:metadata": {f"f:{name}": _M for name in _STRIPPED_META},
}
_IGNORE_WITH_STATUS: FieldSet = {**_IGNORE_BASE, "f:status": _M}

# Observed in the recorded v1.36 transcripts (apply-pvc.json): re-applying an unchanged
# PersistentVolumeClaim still writes it and moves its resourceVersion.
_ALWAYS_REWRITTEN = frozenset({("", "PersistentVolumeClaim")})


@dataclass
class Request:
    """One API request, already split from HTTP."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        """Return the media type of the body without parameters."""
        return self.headers.get("content-type", "").split(";")[0].strip()

    @property
    def accept(self) -> str:
        """Return the Accept header."""
        return self.headers.get("accept", "")


@dataclass
class Response:
    """The answer: status, a JSON body (or raw bytes), extra headers."""

    status: int
    body: Any
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


@dataclass
class Target:
    """What a resource path names: resource type, namespace, name, subresource."""

    rt: ResourceType
    namespace: str
    name: str
    subresource: str


def now() -> str:
    """Return the current time as the API server writes timestamps (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


class Cluster:
    """An in-memory Kubernetes API: registry, objects, and the verbs over them."""

    def __init__(self, version: str = "v1.33.4") -> None:
        self.version = version
        self.store = Store()
        self.schemas = builtin_schemas()
        self._object_meta = self.schemas.nodes["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]
        self.resources: dict[tuple[str, str, str], ResourceType] = {}
        self._nodes: dict[tuple[str, str, str], TypeNode] = {}
        self._validators: dict[tuple[str, str, str], Any] = {}
        self._ips = itertools.count(10)
        self._node_ports = itertools.count(30000)
        for rt in BUILTIN_RESOURCES:
            self.resources[(rt.group, rt.version, rt.plural)] = rt

    # ----------------------------------------------------------------- registry

    def resource_types(self) -> list[ResourceType]:
        """Return every served resource type."""
        with self.store.lock:  # CRD registration changes the registry under this lock
            return list(self.resources.values())

    def node(self, rt: ResourceType) -> TypeNode:
        """Return the type tree of a resource's objects."""
        key = (rt.group, rt.version, rt.plural)
        node = self._nodes.get(key)
        if node is None:
            if rt.crd_schema is not None:
                node = crd_node(rt.crd_schema, self._object_meta)
            else:
                found = self.schemas.node_for(rt.group, rt.version, rt.kind)
                if found is None:
                    raise st.internal(f"no schema for {rt.group_kind}")
                node = found
            self._nodes[key] = node
        return node

    def _validator(self, rt: ResourceType) -> Any:
        key = (rt.group, rt.version, rt.plural)
        if key not in self._validators:
            if rt.crd_schema is not None:
                self._validators[key] = validation.crd_validator(rt.crd_schema)
            else:
                name = self.schemas.by_gvk.get((rt.group, rt.version, rt.kind))
                self._validators[key] = validation.builtin_validator(name) if name else None
        return self._validators[key]

    def _register_crd(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        self._unregister_group_resource(group, names.get("plural", ""))
        for version in spec.get("versions") or []:
            if not version.get("served", True):
                continue
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
            }
            has_status = "status" in (version.get("subresources") or {})
            subresources: tuple[Subresource, ...] = ()
            if has_status:
                subresources = (
                    Subresource(
                        "status", "", "", names.get("kind", ""), ("get", "patch", "update")
                    ),
                )
            rt = ResourceType(
                group=group,
                version=version["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                singular=names.get("singular") or names.get("kind", "").lower(),
                namespaced=spec.get("scope") == "Namespaced",
                verbs=(
                    "delete",
                    "deletecollection",
                    "get",
                    "list",
                    "patch",
                    "create",
                    "update",
                    "watch",
                ),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=subresources,
                crd_schema=schema,
                crd_status_subresource=has_status,
            )
            self.resources[(group, rt.version, rt.plural)] = rt

    def _unregister_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self.resources if k[0] == group and k[2] == plural]:
            if self.resources[key].crd_schema is not None:
                del self.resources[key]
                self._nodes.pop(key, None)
                self._validators.pop(key, None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """Return the resource type served at ``group/version/plural``."""
        return self.resources.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        """Return the resource type of objects with ``apiVersion`` and ``kind``."""
        group, _, version = api_version.rpartition("/")
        for rt in self.resources.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        return None

    # ------------------------------------------------------------------ reading

    def get(self, target: Target) -> dict[str, Any]:
        """Return the stored object or raise NotFound."""
        rt = target.rt
        obj = self.store.get((rt.group, rt.plural), (target.namespace, target.name))
        if obj is None:
            raise st.not_found(rt.group, rt.plural, target.name)
        return obj

    def list_objects(
        self, rt: ResourceType, namespace: str | None, query: dict[str, str]
    ) -> dict[str, Any]:
        """Return a List object, filtered by selectors and paged by ``limit``/``continue``."""
        try:
            labels = parse_label_selector(query.get("labelSelector", ""))
            fields = parse_field_selector(query.get("fieldSelector", ""))
        except SelectorError as exc:
            raise st.bad_request(str(exc)) from exc
        limit = int(query.get("limit") or 0)
        start = ""
        token = query.get("continue")
        if token:
            try:
                start = json.loads(base64.b64decode(token))["start"]
            except (ValueError, KeyError) as exc:
                raise st.ApiError(410, "continue key is not valid", "Expired") from exc
        with self.store.lock:
            revision = self.store.revision
            objects = self.store.items((rt.group, rt.plural), namespace)
        items: list[dict[str, Any]] = []
        next_start = ""
        remaining = 0
        for obj in objects:
            meta = obj["metadata"]
            key = f"{meta.get('namespace', '')}/{meta['name']}"
            if start and key < start:
                continue
            if not labels(meta.get("labels") or {}) or not fields(obj):
                continue
            if limit and len(items) >= limit:
                if not next_start:
                    next_start = key
                remaining += 1
                continue
            items.append(obj)
        metadata: dict[str, Any] = {"resourceVersion": str(revision)}
        if next_start:
            token = base64.b64encode(
                json.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": next_start}).encode()
            ).decode()
            metadata["continue"] = token
            metadata["remainingItemCount"] = remaining
        if rt.crd_schema is None:
            items = [{k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in items]
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.group_version,
            "metadata": metadata,
            "items": items,
        }

    # ------------------------------------------------------------------ decoding

    def decode(self, value: Any, node: TypeNode, path: str, unknown: list[str], prune: bool) -> Any:
        """Return a copy of ``value`` with canonical quantities; collect or drop unknown fields.

        Raises :class:`ssa.TypedError` for values of the wrong type.
        """
        kind = node.kind
        if kind == UNTYPED:
            return _copy(value)
        if value is None:
            return None
        if kind == SCALAR:
            if node.scalar == "quantity":
                if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                    raise ssa.TypedError(
                        path, "expected string or numeric, got " + type(value).__name__
                    )
                try:
                    return canonical_quantity(value)
                except QuantityError as exc:
                    raise ssa.TypedError(path, str(exc)) from exc
            ssa._check_scalar(value, node, path)
            return value
        if kind in (STRUCT, MAP):
            if not isinstance(value, dict):
                raise ssa.TypedError(path, f"expected map, got {ssa._json_type(value)}")
            out: dict[str, Any] = {}
            for key, child_value in value.items():
                child = node.child(key)
                child_path = f"{path}.{key}"
                if child is None:
                    unknown.append(child_path)
                    if not prune:
                        out[key] = child_value
                    continue
                out[key] = self.decode(child_value, child, child_path, unknown, prune)
            return out
        if kind == LIST:
            if not isinstance(value, list):
                raise ssa.TypedError(path, f"expected list, got {ssa._json_type(value)}")
            item = node.item()
            return [
                self.decode(v, item, f"{path}[{i}]", unknown, prune) for i, v in enumerate(value)
            ]
        return _copy(value)

    # ------------------------------------------------------------------ writing

    def _check_namespace(self, target: Target) -> None:
        if not target.rt.namespaced:
            return
        if self.store.get(("", "namespaces"), ("", target.namespace)) is None:
            raise st.not_found("", "namespaces", target.namespace)

    def _ignore(self, rt: ResourceType) -> FieldSet:
        return _IGNORE_WITH_STATUS if rt.has_status else _IGNORE_BASE

    def _skeleton(self, obj: dict[str, Any]) -> dict[str, Any]:
        # The fields a freshly constructed Go object serialises even when empty, so that
        # an Update-created object's managedFields only mark the truly new parents.
        skeleton: dict[str, Any] = {"metadata": {}}
        spec = obj.get("spec")
        if isinstance(spec, dict):
            skeleton["spec"] = {}
            if isinstance(spec.get("template"), dict):
                skeleton["spec"]["template"] = {"metadata": {}, "spec": {}}
        return skeleton

    def _gvk_text(self, rt: ResourceType) -> str:
        return f"{rt.group}/{rt.version}, Kind={rt.kind}"

    def _parse_body(self, request: Request, yaml_ok: bool) -> Any:
        if not request.body:
            raise st.bad_request("the body of the request was empty")
        try:
            if yaml_ok:
                # Clients send JSON (a YAML subset) almost always; parse it at JSON speed.
                try:
                    return json.loads(request.body)
                except ValueError:
                    return yaml.load(request.body, Loader=_Loader)
            return json.loads(request.body)
        except (ValueError, yaml.YAMLError) as exc:
            raise st.bad_request(f"error decoding request body: {exc}") from exc
        except RecursionError as exc:
            # The real server's JSON decoder stops at a depth of 10000 with a 400 too.
            raise st.bad_request("error decoding request body: exceeded max depth") from exc

    def parse_object(self, request: Request, group: str, version: str, kind: str) -> Any:
        """Return the ``group/version`` ``kind`` a request body carries, in each encoding a real server takes.

        JSON, YAML and Kubernetes protobuf (kubectl 1.32+ sends it for ``kubectl create
        namespace|configmap|…``); a protobuf body becomes the JSON object a JSON client
        sends for the same Go struct. A body without a media type is read as JSON (so does
        the real server: the Python client sends none); any other type is refused with 415.
        """
        media = request.content_type or "application/json"
        if media == protobuf.MEDIA_TYPE:
            if not request.body:
                raise st.bad_request("the body of the request was empty")
            try:
                return protobuf.decode(request.body, group, version, kind)
            except protobuf.ProtobufError as exc:
                raise st.bad_request(str(exc)) from exc
        if media not in _OBJECT_MEDIA_TYPES:
            raise st.ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join((*_OBJECT_MEDIA_TYPES, protobuf.MEDIA_TYPE))}",
                "UnsupportedMediaType",
            )
        return self._parse_body(request, yaml_ok=media == "application/yaml")

    def _check_identity(self, target: Target, obj: Any) -> None:
        rt = target.rt
        if not isinstance(obj, dict):
            raise st.bad_request("the request body must be an object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if (kind and kind != rt.kind) or (api_version and api_version != rt.group_version):
            raise st.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.group_version})"
                if api_version != rt.group_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        meta = obj.get("metadata")
        if meta is not None and not isinstance(meta, dict):
            raise st.bad_request("metadata must be an object")
        meta = meta or {}
        name = meta.get("name")
        if target.name and name and name != target.name:
            raise st.bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({target.name})"
            )
        namespace = meta.get("namespace")
        if rt.namespaced and namespace and namespace != target.namespace:
            raise st.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )

    def create(self, target: Target, request: Request) -> Response:
        """Handle POST: create an object (409 when it exists)."""
        rt = target.rt
        body = self.parse_object(request, rt.group, rt.version, rt.kind)
        self._check_identity(target, body)
        meta = (
            body.setdefault("metadata", {})
            if isinstance(body.get("metadata"), dict) or "metadata" not in body
            else body["metadata"]
        )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if meta.get("resourceVersion"):
            raise st.bad_request("resourceVersion should not be set on objects to be created")
        target = Target(rt, target.namespace, str(meta.get("name", "")), "")
        new = self._decode_for_update(rt, body, request)
        manager = self._manager(request)
        with self.store.lock:
            self._check_namespace(target)
            if self.store.get((rt.group, rt.plural), (target.namespace, target.name)) is not None:
                raise st.already_exists(rt.group, rt.plural, target.name)
            entries = ssa.decode_managed_fields(meta.get("managedFields"))
            return self._commit_update(target, None, new, entries, manager, request, created=True)

    def _manager(self, request: Request) -> str:
        manager = request.query.get("fieldManager")
        if manager:
            return manager
        agent = request.headers.get("user-agent", "")
        return agent.split("/")[0] if agent else "unknown"

    def _decode_for_update(
        self, rt: ResourceType, body: dict[str, Any], request: Request
    ) -> dict[str, Any]:
        directive = request.query.get(
            "fieldValidation", "Warn" if rt.crd_schema is None else "Ignore"
        )
        unknown: list[str] = []
        try:
            decoded = self.decode(body, self.node(rt), "", unknown, prune=True)
        except ssa.TypedError as exc:
            raise st.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {exc}'
            ) from exc
        if unknown and directive == "Strict":
            fields = ", ".join(f'unknown field "{u.lstrip(".")}"' for u in unknown)
            raise st.bad_request(f"strict decoding error: {fields}")
        if unknown and directive == "Warn":
            request.headers["x-specc-warnings"] = "; ".join(
                f'unknown field "{u.lstrip(".")}"' for u in unknown
            )
        decoded = _strip_nulls(decoded)
        decoded.setdefault("apiVersion", rt.group_version)
        decoded.setdefault("kind", rt.kind)
        return dict(decoded)

    def replace(self, target: Target, request: Request) -> Response:
        """Handle PUT: replace an object, with optimistic concurrency on resourceVersion."""
        rt = target.rt
        body = self.parse_object(request, rt.group, rt.version, rt.kind)
        self._check_identity(target, body)
        new = self._decode_for_update(rt, body, request)
        with self.store.lock:
            live = self.get(target)
            wanted = (new.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != live["metadata"]["resourceVersion"]:
                raise st.stale(rt.group, rt.plural, target.name)
            if target.subresource == "status":
                new = {**live, "status": new.get("status")}
            entries = self._entries_for_update(live, new)
            return self._commit_update(target, live, new, entries, self._manager(request), request)

    def _entries_for_update(
        self, live: dict[str, Any], new: dict[str, Any]
    ) -> list[ssa.ManagedEntry] | None:
        """Return the managed fields an update starts from; None when the client clears them.

        Leaving managedFields out keeps the stored ones; an empty list, or a list of empty
        entries, strips them (SSA "Clearing managedFields"; kube-apiserver 1.36 treats
        ``[]`` like ``[{}]``, whatever the documentation says); any other list replaces them.
        """
        meta = new.get("metadata") or {}
        sent = meta.get("managedFields")
        if "managedFields" in meta and isinstance(sent, list) and not any(sent):
            return None
        if not sent or sent == live["metadata"].get("managedFields"):
            return ssa.decode_managed_fields(live["metadata"].get("managedFields"))
        return ssa.decode_managed_fields(sent)

    def patch(self, target: Target, request: Request) -> Response:
        """Handle PATCH: apply, merge, JSON or strategic-merge patch."""
        kind = request.content_type
        if kind == APPLY:
            return self.apply(target, request)
        rt = target.rt
        custom = rt.crd_schema is not None
        if kind not in (MERGE, JSON_PATCH, STRATEGIC) or (kind == STRATEGIC and custom):
            raise st.unsupported_media_type(custom)
        patch = self._parse_body(request, yaml_ok=False)
        with self.store.lock:
            live = self.get(target)
            try:
                if kind == MERGE:
                    patched = merge_patch(live, patch)
                elif kind == JSON_PATCH:
                    patched = json_patch(live, patch)
                else:
                    patched = strategic_merge_patch(live, patch, self.node(rt))
            except PatchError as exc:
                raise st.ApiError(422, str(exc), "Invalid") from exc
            if not isinstance(patched, dict):
                raise st.bad_request("the patch did not produce an object")
            self._check_identity(target, patched)
            new = self._decode_for_update(rt, patched, request)
            wanted = (new.get("metadata") or {}).get("resourceVersion")
            if wanted and wanted != live["metadata"]["resourceVersion"]:
                raise st.stale(rt.group, rt.plural, target.name)
            if target.subresource == "status":
                new = {**live, "status": new.get("status")}
            entries = self._entries_for_update(live, new)
            return self._commit_update(target, live, new, entries, self._manager(request), request)

    def _commit_update(
        self,
        target: Target,
        live: dict[str, Any] | None,
        new: dict[str, Any],
        entries: list[ssa.ManagedEntry] | None,
        manager: str,
        request: Request,
        created: bool = False,
    ) -> Response:
        rt = target.rt
        new = self._server_fields(target, live, new)
        node = self.node(rt)
        before = live if live is not None else self._skeleton(new)
        # kube-apiserver 1.36 records /scale writes with the subresource and no time (the
        # Scale object's managed fields are converted back to the parent without it).
        stamp = "" if target.subresource == "scale" else now()
        updater = ssa.ManagedEntry(
            manager, "Update", rt.group_version, stamp, {}, target.subresource
        )
        ignore = self._ignore(rt) if target.subresource != "status" else {}
        if entries is None:
            return self._store(target, live, new, [], request)
        if live is not None and not entries and not live["metadata"].get("managedFields"):
            # An object whose managedFields were stripped is not tracked by updates until
            # the next apply (apimachinery's skipNonAppliedManager).
            return self._store(target, live, new, [], request)
        outcome = ssa.update(_strip_meta(before), _strip_meta(new), node, entries, updater, ignore)
        return self._store(target, live, new, outcome.managed, request)

    def apply(self, target: Target, request: Request) -> Response:
        """Handle a server-side apply patch (create or update)."""
        rt = target.rt
        manager = request.query.get("fieldManager")
        if not manager:
            raise st.ApiError(
                422,
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
                "Invalid",
                {
                    "group": "meta.k8s.io",
                    "kind": "PatchOptions",
                    "causes": [
                        validation.required("fieldManager", "is required for apply patch").to_dict()
                    ],
                },
            )
        force = request.query.get("force", "false").lower() == "true"
        config = self._parse_body(request, yaml_ok=True)
        if not isinstance(config, dict):
            raise st.bad_request("the apply patch must be an object")
        if (config.get("metadata") or {}).get("managedFields") is not None:
            raise st.bad_request("metadata.managedFields must be nil")
        self._check_identity(target, config)
        if not config.get("apiVersion") or not config.get("kind"):
            raise st.bad_request("apiVersion and kind must be set in an apply patch")
        node = self.node(rt)
        unknown: list[str] = []
        prune = rt.crd_schema is not None or request.query.get("fieldValidation") == "Ignore"
        where = f"{target.namespace}/{target.name}" if rt.namespaced else f"/{target.name}"
        try:
            config = self.decode(config, node, "", unknown, prune=prune)
            if unknown and not prune:
                raise ssa.TypedError(unknown[0], "field not declared in schema")
        except ssa.TypedError as exc:
            raise st.internal(
                f"failed to create typed patch object ({where}; {self._gvk_text(rt)}): {exc}"
            ) from exc
        with self.store.lock:
            live = self.store.get((rt.group, rt.plural), (target.namespace, target.name))
            if live is None:
                self._check_namespace(target)
            entries = (
                ssa.decode_managed_fields(live["metadata"].get("managedFields")) if live else []
            )
            applier = ssa.ManagedEntry(manager, "Apply", rt.group_version, now(), {}, "")
            base = _strip_meta(live) if live is not None else {"metadata": {}}
            if live is not None and not entries:
                # An untracked object: what it holds becomes "before-first-apply"'s, as if
                # that manager had created it (skipNonAppliedManager.Apply).
                entries = ssa.update(
                    _strip_meta(self._skeleton(live)),
                    base,
                    node,
                    [],
                    ssa.ManagedEntry(
                        "before-first-apply", "Update", rt.group_version, now(), {}, ""
                    ),
                    self._ignore(rt),
                ).managed
            try:
                outcome = ssa.apply(
                    base, _strip_meta(config), node, entries, applier, force, self._ignore(rt)
                )
            except ssa.ConflictError as exc:
                raise st.ApiError(
                    409,
                    str(exc),
                    "Conflict",
                    {
                        "causes": [
                            {
                                "reason": "FieldManagerConflict",
                                "message": f"conflict with {c.manager.describe()}",
                                "field": _path_text(c.path),
                            }
                            for c in exc.conflicts
                        ]
                    },
                ) from exc
            except ssa.TypedError as exc:
                raise st.internal(
                    f"failed to create typed patch object ({where}; {self._gvk_text(rt)}): {exc}"
                ) from exc
            merged = _strip_nulls(outcome.obj)
            merged["metadata"] = {**(merged.get("metadata") or {})}
            new = self._server_fields(target, live, merged)
            return self._store(target, live, new, outcome.managed, request)

    def _server_fields(
        self, target: Target, live: dict[str, Any] | None, new: dict[str, Any]
    ) -> dict[str, Any]:
        """Return ``new`` with identity, server-owned metadata and status restored."""
        rt = target.rt
        new = _copy(new)
        new["apiVersion"] = rt.group_version
        new["kind"] = rt.kind
        meta = new.setdefault("metadata", {})
        meta["name"] = target.name
        if rt.namespaced:
            meta["namespace"] = target.namespace
        else:
            meta.pop("namespace", None)
        for key in (
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            meta.pop(key, None)
            if live is not None and key in live["metadata"]:
                meta[key] = live["metadata"][key]
        meta.pop("resourceVersion", None)
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        if rt.has_status and target.subresource != "status":
            if live is not None and "status" in live:
                new["status"] = _copy(live["status"])
            else:
                new.pop("status", None)
        return new

    def _finalise(
        self, target: Target, live: dict[str, Any] | None, new: dict[str, Any]
    ) -> dict[str, Any]:
        rt = target.rt
        group_kind = (rt.group, rt.kind)
        meta = new["metadata"]
        if live is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if group_kind in GENERATION_KINDS or rt.crd_schema is not None:
                meta["generation"] = 1
            finalizer = defaults.CREATE_FINALIZERS.get(group_kind)
            if finalizer and finalizer not in (meta.get("finalizers") or []):
                meta["finalizers"] = [*(meta.get("finalizers") or []), finalizer]
            if rt.has_status and rt.crd_schema is None:
                new["status"] = _copy(defaults.EMPTY_STATUS.get(group_kind, {}))
            if group_kind == ("", "Namespace"):
                new["status"] = {"phase": "Active"}
            if group_kind == ("apiextensions.k8s.io", "CustomResourceDefinition"):
                stored = [
                    v["name"]
                    for v in (new.get("spec") or {}).get("versions") or []
                    if v.get("storage")
                ]
                new["status"] = {
                    "conditions": None,
                    "acceptedNames": {"plural": "", "kind": ""},
                    "storedVersions": stored,
                }
        defaults.apply_defaults(rt.group, rt.kind, new)
        if group_kind == ("", "Service"):
            self._allocate_service(new, live)
        return new

    def _allocate_service(self, obj: dict[str, Any], live: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            return
        old_spec = (live or {}).get("spec") or {}
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP") or self._next_ip()
        if not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        if kind in ("NodePort", "LoadBalancer"):
            old_ports = {(p.get("port"), p.get("protocol")): p for p in old_spec.get("ports") or []}
            for port in spec.get("ports") or []:
                if not port.get("nodePort"):
                    previous = old_ports.get((port.get("port"), port.get("protocol")), {})
                    port["nodePort"] = previous.get("nodePort") or next(self._node_ports)

    def _next_ip(self) -> str:
        index = next(self._ips)
        return f"10.96.{(index // 250) % 250}.{index % 250 + 1}"

    def _store(
        self,
        target: Target,
        live: dict[str, Any] | None,
        new: dict[str, Any],
        managed: list[ssa.ManagedEntry],
        request: Request,
    ) -> Response:
        rt = target.rt
        new = self._finalise(target, live, new)
        self._validate(target, live, new)
        if live is not None and _spec_changed(live, new) and "generation" in new["metadata"]:
            new["metadata"]["generation"] = int(live["metadata"].get("generation", 1)) + 1
        if live is not None and _same_object(live, new):
            # Nothing changed in the object, so no manager acted: keep their timestamps.
            before = {
                e.identity: e
                for e in ssa.decode_managed_fields(live["metadata"].get("managedFields"))
            }
            managed = [
                before[e.identity]
                if e.identity in before and before[e.identity].fields == e.fields
                else e
                for e in managed
            ]
        encoded = ssa.encode_managed_fields(managed)
        if encoded:
            new["metadata"]["managedFields"] = encoded
        dry_run = request.query.get("dryRun") == "All"
        headers: dict[str, str] = {}
        warnings = request.headers.pop("x-specc-warnings", "")
        if warnings:
            headers["Warning"] = f'299 - "{warnings}"'
        pod_security = self._admit_pod_security(target, new)
        if pod_security:
            quoted = pod_security.replace("\\", "\\\\").replace('"', '\\"')
            headers["Warning"] = f'299 - "{quoted}"'
        if live is not None:
            new["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            if new == live and (rt.group, rt.kind) not in _ALWAYS_REWRITTEN:
                return Response(200, live, headers=headers)
        new = _order_object(new)
        if dry_run:
            if live is None:
                new["metadata"].pop("resourceVersion", None)
            return Response(201 if live is None else 200, new, headers=headers)
        new["metadata"]["resourceVersion"] = str(self.store.next_revision())
        new = _order_object(new)
        self.store.put(
            (rt.group, rt.plural), (target.namespace, target.name), new, created=live is None
        )
        if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            response = Response(201 if live is None else 200, new, headers=headers)
            self._establish(target, new)
            return response
        return Response(201 if live is None else 200, new, headers=headers)

    def _validate(self, target: Target, live: dict[str, Any] | None, new: dict[str, Any]) -> None:
        rt = target.rt
        causes = validation.validate_metadata(rt.group, rt.kind, new)
        validator = self._validator(rt)
        if validator is not None:
            subject = new
            if rt.crd_schema is not None:
                subject = {k: v for k, v in new.items() if k != "metadata"}
            causes.extend(
                validation.schema_causes(validator, subject, custom=rt.crd_schema is not None)
            )
        causes.extend(validation.validate_kind(rt.group, rt.kind, new, live))
        if causes:
            raise st.invalid(rt.group, rt.kind, target.name, causes)
        if (rt.group, rt.kind) == ("", "PersistentVolumeClaim") and live is not None:
            self._admit_claim_resize(target, live, new)

    def _admit_pod_security(self, target: Target, new: dict[str, Any]) -> str:
        """Act as PodSecurity admission (version latest): refuse a Pod that violates its
        namespace's ``enforce`` level (403); return the warning for a Pod or a workload's
        pod template that violates the ``warn`` level ("" when none)."""
        from specc.check import podsecurity as pss

        rt = target.rt
        where = pss.TEMPLATE_PATHS.get((rt.group_version, rt.kind))
        if where is None or not target.namespace:
            return ""
        ns = self.store.get(("", "namespaces"), ("", target.namespace)) or {}
        labels = (ns.get("metadata") or {}).get("labels") or {}
        template: Any = new
        for key in where:
            template = template.get(key) if isinstance(template, dict) else None
        if not isinstance(template, dict):
            return ""

        def said(level: str) -> str:
            if level not in ("baseline", "restricted"):
                return ""
            found = pss.pod_violations(template, cast("pss.Level", level))
            messages = list(dict.fromkeys(v.message for v in found))
            return f'PodSecurity "{level}:latest": ' + ", ".join(messages) if messages else ""

        enforce = said(str(labels.get(pss.LABEL + "enforce", "")))
        if enforce and rt.kind == "Pod":
            raise st.ApiError(
                403,
                f'{rt.plural} "{target.name}" is forbidden: violates {enforce}',
                "Forbidden",
                {"name": target.name, "kind": rt.plural},
            )
        warn = said(str(labels.get(pss.LABEL + "warn", "")))
        return f"would violate {warn}" if warn else ""

    def _admit_claim_resize(
        self, target: Target, live: dict[str, Any], new: dict[str, Any]
    ) -> None:
        """Act as the PersistentVolumeClaimResize admission plugin: a claim grows only
        when bound and its StorageClass says allowVolumeExpansion (403 otherwise)."""
        path = ("spec", "resources", "requests", "storage")
        grown, was = validation.storage_of(new, *path), validation.storage_of(live, *path)
        if grown is None or was is None or grown <= was:
            return
        if (live.get("status") or {}).get("phase") != "Bound":
            message = "Only bound persistent volume claims can be expanded"
        else:
            name = (live.get("spec") or {}).get("storageClassName") or ""
            sc = self.store.get(("storage.k8s.io", "storageclasses"), ("", name)) if name else None
            if sc is not None and sc.get("allowVolumeExpansion") is True:
                return
            message = (
                "only dynamically provisioned pvc can be resized and the storageclass that "
                "provisions the pvc must support resize"
            )
        raise st.ApiError(
            403,
            f'persistentvolumeclaims "{target.name}" is forbidden: {message}',
            "Forbidden",
            {"name": target.name, "kind": "persistentvolumeclaims"},
        )

    def _establish(self, target: Target, crd: dict[str, Any]) -> None:
        """Act as the apiextensions controllers: accept names, mark Established, serve it."""
        spec = crd.get("spec") or {}
        names = dict(spec.get("names") or {})
        accepted = {
            k: names[k]
            for k in ("plural", "singular", "shortNames", "kind", "listKind", "categories")
            if k in names
        }
        status = crd.get("status") or {}
        conditions = status.get("conditions") or []
        if (
            any(c.get("type") == "Established" for c in conditions)
            and status.get("acceptedNames") == accepted
        ):
            self._register_crd(crd)
            return
        stamp = now()
        new_status = {
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "lastTransitionTime": stamp,
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                },
                {
                    "type": "Established",
                    "status": "True",
                    "lastTransitionTime": stamp,
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                },
            ],
            "acceptedNames": accepted,
            "storedVersions": status.get("storedVersions") or [],
        }
        updated = {**crd, "status": new_status}
        updated["metadata"] = dict(crd["metadata"])
        entries = ssa.decode_managed_fields(crd["metadata"].get("managedFields"))
        updater = ssa.ManagedEntry(
            "kube-apiserver", "Update", target.rt.group_version, stamp, {}, "status"
        )
        outcome = ssa.update(
            _strip_meta(crd), _strip_meta(updated), self.node(target.rt), entries, updater, {}
        )
        updated["metadata"]["managedFields"] = ssa.encode_managed_fields(outcome.managed)
        updated["metadata"]["resourceVersion"] = str(self.store.next_revision())
        self.store.put(
            (target.rt.group, target.rt.plural), ("", target.name), updated, created=False
        )
        self._register_crd(updated)

    # ------------------------------------------------------------------ deleting

    def delete(self, target: Target, request: Request) -> Response:
        """Handle DELETE of one object, with propagationPolicy and preconditions."""
        rt = target.rt
        options: dict[str, Any] = {}
        if request.body:
            options = self.parse_object(request, rt.group, rt.version, "DeleteOptions") or {}
        policy = (
            request.query.get("propagationPolicy")
            or options.get("propagationPolicy")
            or "Background"
        )
        dry_run = request.query.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
        with self.store.lock:
            live = self.get(target)
            preconditions = options.get("preconditions") or {}
            for key, field_name, hint in (
                ("uid", "UID", "deleted and then recreated"),
                ("resourceVersion", "ResourceVersion", "modified"),
            ):
                wanted, actual = preconditions.get(key), live["metadata"].get(key)
                if wanted and wanted != actual:
                    # Worded as the real server's storage precondition (kube-apiserver 1.36).
                    raise st.ApiError(
                        409,
                        f'Operation cannot be fulfilled on {rt.group_kind} "{target.name}": the '
                        f"{field_name} in the precondition ({wanted}) does not match the "
                        f"{field_name} in record ({actual}). The object might have been {hint}",
                        "Conflict",
                        {
                            "name": target.name,
                            **({"group": rt.group} if rt.group else {}),
                            "kind": rt.kind,
                        },
                    )
            if dry_run:
                return Response(200, _success(rt, target.name, live))
            finalizers = [
                f
                for f in live["metadata"].get("finalizers") or []
                if f not in _CONTROLLER_FINALIZERS
            ]
            if finalizers:
                # Finalizers that no simulated controller handles keep the object, marked.
                if "deletionTimestamp" not in live["metadata"]:
                    marked = _copy(live)
                    marked["metadata"]["deletionTimestamp"] = now()
                    marked["metadata"]["deletionGracePeriodSeconds"] = 0
                    marked["metadata"]["resourceVersion"] = str(self.store.next_revision())
                    self.store.put(
                        (rt.group, rt.plural), (target.namespace, target.name), marked, False
                    )
                    live = marked
                return Response(200, live)
            self._remove(target, live, policy)
            if policy == "Foreground":
                gone = _copy(live)
                gone["metadata"]["deletionTimestamp"] = now()
                gone["metadata"]["finalizers"] = ["foregroundDeletion"]
                return Response(200, gone)
            return Response(200, _success(rt, target.name, live))

    def _remove(self, target: Target, live: dict[str, Any], policy: str) -> None:
        rt = target.rt
        final = _copy(live)
        final["metadata"]["resourceVersion"] = str(self.store.next_revision())
        self.store.remove((rt.group, rt.plural), (target.namespace, target.name), final)
        uid = live["metadata"].get("uid")
        if (rt.group, rt.kind) == ("", "Namespace"):
            # The namespace controller empties a deleted namespace.
            for other in self.resource_types():
                if not other.namespaced:
                    continue
                for key in self.store.keys((other.group, other.plural)):
                    if key[0] == target.name:
                        obj = self.store.get((other.group, other.plural), key)
                        if obj is not None:
                            self._remove(Target(other, key[0], key[1], ""), obj, "Background")
        if (rt.group, rt.kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
            spec = live.get("spec") or {}
            plural = (spec.get("names") or {}).get("plural", "")
            self.store.drop_resource((spec.get("group", ""), plural))
            self._unregister_group_resource(spec.get("group", ""), plural)
        self._collect_garbage(uid, policy)

    def _collect_garbage(self, owner_uid: str | None, policy: str) -> None:
        if not owner_uid:
            return
        for other in self.resource_types():
            for key in self.store.keys((other.group, other.plural)):
                obj = self.store.get((other.group, other.plural), key)
                if obj is None:
                    continue
                refs = obj["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == owner_uid for r in refs):
                    continue
                if policy == "Orphan":
                    kept = _copy(obj)
                    kept["metadata"]["ownerReferences"] = [
                        r for r in refs if r.get("uid") != owner_uid
                    ]
                    if not kept["metadata"]["ownerReferences"]:
                        del kept["metadata"]["ownerReferences"]
                    kept["metadata"]["resourceVersion"] = str(self.store.next_revision())
                    self.store.put((other.group, other.plural), key, kept, False)
                elif len(refs) == 1:
                    self._remove(Target(other, key[0], key[1], ""), obj, "Background")

    def delete_collection(
        self, rt: ResourceType, namespace: str | None, request: Request
    ) -> Response:
        """Handle DELETE on a collection: delete every object the selectors match."""
        listing = self.list_objects(
            rt, namespace, {k: v for k, v in request.query.items() if k != "limit"}
        )
        with self.store.lock:
            for item in listing["items"]:
                meta = item["metadata"]
                target = Target(rt, meta.get("namespace", ""), meta["name"], "")
                live = self.store.get((rt.group, rt.plural), (target.namespace, target.name))
                if live is not None:
                    self._remove(target, live, request.query.get("propagationPolicy", "Background"))
        return Response(200, {**listing, "metadata": {"resourceVersion": str(self.store.revision)}})


_CONTROLLER_FINALIZERS = frozenset(
    {"kubernetes.io/pvc-protection", "kubernetes.io/pv-protection", "kubernetes"}
)


def _success(rt: ResourceType, name: str, live: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details["uid"] = live["metadata"].get("uid", "")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def _strip_meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def _same_object(live: dict[str, Any], new: dict[str, Any]) -> bool:
    volatile = ("managedFields", "resourceVersion")
    if {k: v for k, v in live.items() if k != "metadata"} != {
        k: v for k, v in new.items() if k != "metadata"
    }:
        return False
    return {k: v for k, v in live["metadata"].items() if k not in volatile} == {
        k: v for k, v in new["metadata"].items() if k not in volatile
    }


def _spec_changed(live: dict[str, Any], new: dict[str, Any]) -> bool:
    for key in set(live) | set(new):
        if key in ("metadata", "status", "kind", "apiVersion"):
            continue
        if live.get(key) != new.get(key):
            return True
    return False


_ORDER = ("kind", "apiVersion", "metadata", "spec")
_META_ORDER = (
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def _order_object(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` with top-level and metadata keys in the order the server writes them."""
    meta = obj.get("metadata") or {}
    ordered_meta = {k: meta[k] for k in _META_ORDER if k in meta}
    ordered_meta.update({k: v for k, v in meta.items() if k not in ordered_meta})
    out: dict[str, Any] = {}
    for key in _ORDER:
        if key in obj:
            out[key] = ordered_meta if key == "metadata" else obj[key]
    for key, value in obj.items():
        if key not in out and key != "status":
            out[key] = value
    if "status" in obj:
        out["status"] = obj["status"]
    return out


def _path_text(path: tuple[str, ...]) -> str:
    from specc.testing.fieldpath import path_text

    return path_text(path)


class _Loader(yaml.SafeLoader):
    """YAML loader that keeps timestamps and such as strings, as Kubernetes' YAML does."""


for _first, _resolvers in list(_Loader.yaml_implicit_resolvers.items()):
    _Loader.yaml_implicit_resolvers[_first] = [
        (tag, regexp) for tag, regexp in _resolvers if tag != "tag:yaml.org,2002:timestamp"
    ]

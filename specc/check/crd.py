"""Custom resources: JSON Schemas from the structural OpenAPI v3 schemas of CRDs.

A CRD's ``openAPIV3Schema`` is OpenAPI 3.0 with Kubernetes extensions, not JSON
Schema; :func:`crd_json_schema` converts it the way the API server reads it
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema):

- ``nullable: true`` admits null;
- ``x-kubernetes-int-or-string: true`` admits an integer or a string;
- fields a schema does not declare are *pruned* by the API server unless
  ``x-kubernetes-preserve-unknown-fields`` is set. A pruned field is silently lost,
  which is how a typo goes unnoticed; here it is an error ("unknown field"), i.e.
  every structural object node without preserve-unknown-fields gets
  ``additionalProperties: false``;
- ``x-kubernetes-embedded-resource`` objects may carry apiVersion, kind, metadata;
- ``x-kubernetes-list-type: set`` lists must hold unique items and ``map`` lists
  unique keys (``x-kubernetes-list-map-keys``; a missing key is its default, or one
  "unspecified" value), reported at the repeated item as the API server does
  ("Duplicate value"). ``x-kubernetes-map-type`` only decides how server-side apply
  merges a map; the API server validates nothing by it, and neither does specc.

``metadata`` of a custom resource is validated like any object's, against the
ObjectMeta schema of the cluster's Kubernetes version (see :mod:`specc.check`).
CEL rules (``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specc.check import store
from specc.check.kubernetes import split_api_version
from specc.errors import Finding, Position
from specc.load import Document

if TYPE_CHECKING:
    import jsonschema_rs  # imported where compiled, as in specc.check.kubernetes

_DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: Keywords copied as they are (OpenAPI 3.0 and JSON Schema agree on them).
_PLAIN = (
    "type",
    "enum",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "required",
    "format",
)

#: Keywords of specc's own for x-kubernetes-list-type set and map (see _ListSet, _ListMap).
LIST_SET = "x-specc-list-set"
LIST_MAP = "x-specc-list-map"

#: Combinators: value validations only in a structural schema (no pruning inside).
_COMBINATORS = ("allOf", "anyOf", "oneOf")


@dataclass(frozen=True)
class LazyCrd:
    """A CRD known by its names, versions and scope; its schemas are read on first use.

    specc's bundled operator CRDs are ~300 KB of JSON; a fleet that renders no resource
    of their kinds never reads them.
    """

    stub: Mapping[str, Any]
    load: Callable[[], Mapping[str, Any]]
    #: What identifies this CRD's content (its file's version): its converted schemas are
    #: then kept between runs (:mod:`specc.check.store`). "" for none.
    fingerprint: str = ""


@dataclass(frozen=True)
class CrdVersion:
    """One version of a custom kind, as its CRD declares it."""

    group: str
    version: str
    kind: str
    served: bool
    scope: str
    #: The CRD's ``openAPIV3Schema`` for this version (None: no schema, anything goes).
    schema: Mapping[str, Any] | None
    #: ``CustomResourceDefinition/<name>`` and where it was defined, for messages.
    crd: str
    source: Position | None = None
    #: For a :class:`LazyCrd`: reads the whole CRD, whose ``schema`` this one lacks.
    load: Callable[[], Mapping[str, Any]] | None = None
    #: The :class:`LazyCrd`'s fingerprint ("" when not known).
    fingerprint: str = ""

    def openapi(self) -> Mapping[str, Any] | None:
        """Return this version's ``openAPIV3Schema`` (None: no schema), reading it if lazy."""
        if self.load is None:
            return self.schema
        spec = self.load().get("spec") or {}
        shared = (spec.get("validation") or {}).get("openAPIV3Schema")
        for v in spec.get("versions") or []:
            if v.get("name") == self.version:
                return (v.get("schema") or {}).get("openAPIV3Schema", shared)
        return shared


@dataclass
class CrdSchemas:
    """The custom kinds a fleet defines, with validators compiled on first use."""

    versions: dict[tuple[str, str, str], CrdVersion] = field(default_factory=dict)
    _validators: dict[tuple[str, str, str], jsonschema_rs.Validator] = field(default_factory=dict)
    _schemas: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    _digests: dict[tuple[str, str, str], str] = field(default_factory=dict)
    _identities: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: Malformed CRDs among the documents given, at their file:line.
    problems: list[Finding] = field(default_factory=list)
    #: (group, kind) of the malformed CRDs, for the message about their resources.
    malformed: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_documents(cls, docs: Iterable[Mapping[str, Any] | Document | LazyCrd]) -> CrdSchemas:
        """Return the custom kinds defined by the CustomResourceDefinitions in ``docs``.

        ``docs`` may hold any objects (a ``Manifests`` app's documents, the fleet's
        ``crds/`` folder): those that are not ``apiextensions.k8s.io`` CRDs are skipped.
        A later CRD replaces an earlier one of the same name. Malformed CRDs given as
        documents are listed in :attr:`problems` at their file:line.
        """
        out = cls()
        for doc in docs:
            if isinstance(doc, Document):
                out.add(doc.data, doc)
            elif isinstance(doc, LazyCrd):
                out.add(doc.stub, load=doc.load, fingerprint=doc.fingerprint)
            else:
                out.add(doc)
        return out

    def add(
        self,
        crd: Any,
        doc: Document | Position | None = None,
        load: Callable[[], Mapping[str, Any]] | None = None,
        fingerprint: str = "",
    ) -> None:
        """Register the served versions of one CustomResourceDefinition object.

        With ``load``, ``crd`` is a stub without schemas and ``load`` returns the whole CRD.
        """
        if not isinstance(crd, Mapping) or crd.get("kind") != "CustomResourceDefinition":
            return
        if split_api_version(str(crd.get("apiVersion", "")))[0] != "apiextensions.k8s.io":
            return
        source = doc.position if isinstance(doc, Document) else doc
        shape = crd_shape_problems(crd)
        if shape:
            # A CRD the API server would refuse defines nothing; a Manifests copy of it
            # is reported by the check of the CRD object itself.
            spec = crd.get("spec")
            names = spec.get("names") if isinstance(spec, Mapping) else None
            if isinstance(names, Mapping) and isinstance(spec, Mapping):
                self.malformed[(str(spec.get("group")), str(names.get("kind")))] = _crd_ref(crd)
            if isinstance(doc, Document):
                self.problems.extend(
                    Finding(doc.source.value(path), message, _dotted(path), _crd_ref(crd))
                    for path, message in shape
                )
            return
        spec = crd["spec"]
        group = str(spec.get("group", ""))
        kind = str(spec["names"]["kind"])
        scope = str(spec.get("scope", "Namespaced"))
        name = str((crd.get("metadata") or {}).get("name", ""))
        for key in [
            k for k, v in self.versions.items() if v.crd == f"CustomResourceDefinition/{name}"
        ]:
            del self.versions[key]
            self._validators.pop(key, None)
            self._schemas.pop(key, None)
            self._identities.pop(key, None)
        # apiextensions/v1beta1 kept one schema for all versions under spec.validation.
        shared = (spec.get("validation") or {}).get("openAPIV3Schema")
        versions = spec.get("versions") or (
            [{"name": spec["version"], "served": True}] if spec.get("version") else []
        )
        for v in versions:
            schema = (v.get("schema") or {}).get("openAPIV3Schema", shared)
            key = (group, str(v.get("name", "")), kind)
            self.versions[key] = CrdVersion(
                *key,
                served=bool(v.get("served", True)),
                scope=scope,
                schema=schema,
                crd=f"CustomResourceDefinition/{name}",
                source=source,
                load=load,
                fingerprint=fingerprint if load is not None else "",
            )
            self._validators.pop(key, None)
            self._schemas.pop(key, None)
            self._identities.pop(key, None)

    def lookup(self, api_version: str, kind: str) -> CrdVersion | None:
        """Return the CRD version that defines ``apiVersion``/``kind``, if any."""
        group, version = split_api_version(api_version)
        return self.versions.get((group, version, kind))

    def versions_of(self, api_version: str, kind: str) -> list[str]:
        """Return the served apiVersions of ``kind`` in the group of ``api_version``."""
        group, _ = split_api_version(api_version)
        return sorted(
            f"{g}/{v}"
            for (g, v, k), cv in self.versions.items()
            if g == group and k == kind
            if cv.served
        )

    def schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """Return the converted JSON Schema of a custom kind, or None if unknown."""
        found = self.lookup(api_version, kind)
        if found is None:
            return None
        key = (found.group, found.version, found.kind)
        if key not in self._schemas:
            if found.fingerprint:
                self._schemas[key], self._digests[key] = store.cached(
                    ("crd", found.fingerprint, api_version, kind),
                    lambda: crd_json_schema(found.openapi(), api_version, kind),
                )
            else:
                self._schemas[key] = crd_json_schema(found.openapi(), api_version, kind)
        return self._schemas[key]

    def identity(self, api_version: str, kind: str) -> str:
        """Return what identifies the schema of a custom kind ("" if unknown or unsayable).

        A lazy CRD is identified by its file's fingerprint, any other by a hash of its
        ``openAPIV3Schema``: equal identities convert to equal JSON Schemas.
        """
        found = self.lookup(api_version, kind)
        if found is None:
            return ""
        key = (found.group, found.version, found.kind)
        if key not in self._identities:
            if found.load is not None:
                identity = f"{found.fingerprint}#{found.version}" if found.fingerprint else ""
            else:
                try:
                    text = json.dumps(found.schema, sort_keys=True, allow_nan=False)
                    identity = hashlib.sha256(text.encode()).hexdigest()
                except (TypeError, ValueError):
                    identity = ""
            self._identities[key] = identity
        return self._identities[key]

    def validator(self, api_version: str, kind: str) -> jsonschema_rs.Validator | None:
        """Return the compiled validator of a custom kind, or None if unknown.

        Raises ``ValueError`` when the CRD's schema cannot be compiled (an invalid
        ``pattern``, say); the caller reports it against the object.
        """
        found = self.lookup(api_version, kind)
        if found is None:
            return None
        key = (found.group, found.version, found.kind)
        compiled = self._validators.get(key)
        if compiled is None:
            schema = self.schema(api_version, kind)
            assert schema is not None
            compiled = self._validators[key] = compile_crd_schema(schema)
        return compiled


def crd_shape_problems(crd: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """Return where a CRD is not shaped as apiextensions reads it, and why.

    Only the parts specc reads are checked: a CRD written by hand (``versions: [v1]``,
    ``schema: [1]``) must be an error at its line, never a crash.
    """
    out: list[tuple[tuple[str | int, ...], str]] = []

    def mapping(path: tuple[str | int, ...], value: Any, required: bool = False) -> bool:
        if value is None and not required:
            return False
        if not isinstance(value, Mapping):
            what = "is missing" if value is None else f"must be a mapping, not {_kind_of(value)}"
            out.append((path, what))
            return False
        return True

    def string(path: tuple[str | int, ...], value: Any, required: bool = False) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str) or not value:
            what = "is missing" if value is None else "must be a non-empty string"
            out.append((path, what))

    if mapping(("metadata",), crd.get("metadata")):
        string(("metadata", "name"), crd["metadata"].get("name"))
    spec: Any = crd.get("spec")
    if not mapping(("spec",), spec, required=True):
        return out
    string(("spec", "group"), spec.get("group"), required=True)
    string(("spec", "scope"), spec.get("scope"))
    if mapping(("spec", "names"), spec.get("names"), required=True):
        string(("spec", "names", "kind"), spec["names"].get("kind"), required=True)
    if mapping(("spec", "validation"), spec.get("validation")):
        mapping(
            ("spec", "validation", "openAPIV3Schema"), spec["validation"].get("openAPIV3Schema")
        )
    string(("spec", "version"), spec.get("version"))
    versions = spec.get("versions")
    if versions is not None and not isinstance(versions, list):
        out.append((("spec", "versions"), f"must be a list, not {_kind_of(versions)}"))
    for i, v in enumerate(versions if isinstance(versions, list) else []):
        here: tuple[str | int, ...] = ("spec", "versions", i)
        if not mapping(here, v, required=True):
            continue
        string((*here, "name"), v.get("name"), required=True)
        if "served" in v and not isinstance(v["served"], bool):
            out.append(((*here, "served"), "must be a boolean"))
        if mapping((*here, "schema"), v.get("schema")):
            mapping((*here, "schema", "openAPIV3Schema"), v["schema"].get("openAPIV3Schema"))
    return out


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _crd_ref(crd: Mapping[str, Any]) -> str:
    meta = crd.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"CustomResourceDefinition/{name if isinstance(name, str) else '?'}"


def crd_json_schema(
    openapi: Mapping[str, Any] | None, api_version: str, kind: str
) -> dict[str, Any]:
    """Return a JSON Schema (2020-12) equivalent to a CRD version's ``openAPIV3Schema``.

    The root admits ``apiVersion``/``kind`` with the CRD's values and leaves
    ``metadata`` to the ObjectMeta check, as the API server does.
    """
    if openapi is None:
        root: dict[str, Any] = {"type": "object"}
    elif not isinstance(openapi, Mapping):
        raise ValueError("openAPIV3Schema is not a mapping")
    else:
        root = _convert(openapi, structural=True)
        root["type"] = "object"
    props = root.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "enum": [api_version]}
    props["kind"] = {"type": "string", "enum": [kind]}
    props["metadata"] = {"type": "object"}
    if openapi is not None and not openapi.get("x-kubernetes-preserve-unknown-fields"):
        root["additionalProperties"] = False
    root["$schema"] = _DRAFT
    return root


def _convert(node: Mapping[str, Any], *, structural: bool) -> dict[str, Any]:
    """Convert one OpenAPI v3 schema node (``structural``: outside any combinator)."""
    out: dict[str, Any] = {k: node[k] for k in _PLAIN if k in node}
    # OpenAPI 3.0 spells exclusive bounds as booleans next to minimum/maximum.
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(flag) is True and bound in out:
            out[flag] = out.pop(bound)
    if isinstance(node.get("properties"), Mapping):
        out["properties"] = {
            name: _convert(sub, structural=structural)
            for name, sub in node["properties"].items()
            if isinstance(sub, Mapping)
        }
    items = node.get("items")
    if isinstance(items, Mapping):
        out["items"] = _convert(items, structural=structural)
    extra = node.get("additionalProperties")
    if isinstance(extra, Mapping):
        out["additionalProperties"] = _convert(extra, structural=structural)
    elif isinstance(extra, bool):
        out["additionalProperties"] = extra
    for combinator in _COMBINATORS:
        if isinstance(node.get(combinator), list):
            out[combinator] = [
                _convert(sub, structural=False)
                for sub in node[combinator]
                if isinstance(sub, Mapping)
            ]
    if isinstance(node.get("not"), Mapping):
        out["not"] = _convert(node["not"], structural=False)

    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "set":
        out[LIST_SET] = True
    elif list_type == "map" and isinstance(node.get("x-kubernetes-list-map-keys"), list):
        keys = [str(k) for k in node["x-kubernetes-list-map-keys"]]
        item_props = items.get("properties") if isinstance(items, Mapping) else None
        defaults = {
            k: item_props[k]["default"]
            for k in keys
            if isinstance(item_props, Mapping)
            and isinstance(item_props.get(k), Mapping)
            and "default" in item_props[k]
        }
        out[LIST_MAP] = {"keys": keys, "defaults": defaults}
    preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
    if (
        structural
        and out.get("type") == "object"
        and not preserve
        and "additionalProperties" not in out
    ):
        # The API server would prune undeclared fields; say so before it does.
        out["additionalProperties"] = False
    if node.get("nullable"):
        if any(c in out for c in (*_COMBINATORS, "not")):
            # null would fail the combinators' own branches: admit it beside them.
            return {"anyOf": [{"type": "null"}, out]}
        types = out.get("type")
        if isinstance(types, str):
            out["type"] = [types, "null"]
        elif isinstance(types, list):
            out["type"] = [*types, "null"]
        if isinstance(out.get("enum"), list):
            out["enum"] = [*out["enum"], None]
    return out


class _ListSet:
    """``x-kubernetes-list-type: set``: no item twice (apiextensions' listtype validation)."""

    def __init__(self, parent: Any, value: Any, path: Any) -> None:
        pass

    def validate(self, instance: Any) -> None:
        if not isinstance(instance, list):
            return
        seen: dict[str, int] = {}
        for i, item in enumerate(instance):
            key = json.dumps(item, sort_keys=True)
            if key in seen:
                raise ValueError(
                    f"[{i}] Duplicate value: {_short(key)} (the same as [{seen[key]}])"
                )
            seen[key] = i


class _ListMap:
    """``x-kubernetes-list-type: map``: no two items with the same keys."""

    def __init__(self, parent: Any, value: Any, path: Any) -> None:
        self.keys: list[str] = list(value.get("keys") or [])
        self.defaults: dict[str, Any] = dict(value.get("defaults") or {})

    def validate(self, instance: Any) -> None:
        if not isinstance(instance, list):
            return
        seen: dict[str, int] = {}
        for i, item in enumerate(instance):
            if not isinstance(item, dict):
                if item is not None:
                    raise ValueError(f"[{i}] must be an object for an array of list-type map")
                continue
            # A missing key counts as its default, else as one "unspecified" value.
            values = {k: item.get(k, self.defaults.get(k, _UNSPECIFIED)) for k in self.keys}
            key = json.dumps(values, sort_keys=True)
            if key in seen:
                shown = ", ".join(
                    f"{k}={json.dumps(v)}" for k, v in values.items() if v != _UNSPECIFIED
                )
                raise ValueError(
                    f"[{i}] Duplicate value: {{{shown}}} (the same keys as [{seen[key]}]; "
                    f"the list is a map keyed by {', '.join(self.keys)})"
                )
            seen[key] = i


_UNSPECIFIED = "\u0000unspecified"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def compile_crd_schema(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """Return the validator of a converted CRD schema, list semantics included.

    As :func:`specc.check.kubernetes.compile_schema`: formats are annotations, every
    ``$ref`` is local.
    """
    import jsonschema_rs

    return jsonschema_rs.validator_for(
        schema,
        validate_formats=False,
        ignore_unknown_formats=True,
        offline=True,
        keywords={LIST_SET: _ListSet, LIST_MAP: _ListMap},
    )

"""Discovery and OpenAPI documents for the resources the double serves.

Shapes follow the recorded ``discovery.json`` transcript: ``/api``, ``/apis``, the
per-group-version ``APIResourceList``, aggregated discovery (``apidiscovery.k8s.io/v2``
and ``v2beta1`` for older kubectl) and a minimal ``/openapi/v3``: enough paths, with
their ``x-kubernetes-group-version-kind`` and query parameters, for kubectl to use
server-side field validation and dry-run.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from specc.testing.resources import ResourceType

# The order in which the real server lists built-in groups (recorded /apis).
GROUP_ORDER = (
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "resource.k8s.io",
    "flowcontrol.apiserver.k8s.io",
)


def version_info(version: str) -> dict[str, str]:
    """Return the ``/version`` document for a ``vMAJOR.MINOR.PATCH`` version."""
    major, minor = version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": str(max(int(minor) - 1, 0)),
        "gitVersion": version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _groups(resources: list[ResourceType]) -> list[tuple[str, list[str]]]:
    """Return (group, versions newest-preferred first) in the server's order."""
    found: dict[str, list[str]] = {}
    for rt in resources:
        if rt.group:
            versions = found.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
    order = {name: i for i, name in enumerate(GROUP_ORDER)}
    names = sorted(found, key=lambda g: (order.get(g, len(order)), g))
    return [(name, sorted(found[name], key=_version_priority)) for name in names]


def _version_priority(version: str) -> tuple[int, int, int]:
    # Kubernetes version priority: GA > beta > alpha, then higher numbers first.
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0))


def api_versions(address: str) -> dict[str, Any]:
    """Return the ``/api`` document."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def api_group_list(resources: list[ResourceType]) -> dict[str, Any]:
    """Return the ``/apis`` document (APIGroupList)."""
    groups = []
    for name, versions in _groups(resources):
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        groups.append({"name": name, "versions": entries, "preferredVersion": entries[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(resources: list[ResourceType], group: str) -> dict[str, Any] | None:
    """Return the ``/apis/<group>`` document, or None for an unknown group."""
    for name, versions in _groups(resources):
        if name == group:
            entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
            return {
                "kind": "APIGroup",
                "apiVersion": "v1",
                "name": name,
                "versions": entries,
                "preferredVersion": entries[0],
            }
    return None


def resource_list(resources: list[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    """Return the ``APIResourceList`` of one group version, or None when nothing is served."""
    served = [rt for rt in resources if rt.group == group and rt.version == version]
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for rt in served:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        entry["storageVersionHash"] = rt.storage_version_hash
        entries.append(entry)
        for sub in rt.subresources:
            sub_entry: dict[str, Any] = {
                "name": f"{rt.plural}/{sub.name}",
                "singularName": "",
                "namespaced": rt.namespaced,
            }
            if sub.group or sub.version:
                sub_entry["group"] = sub.group
                sub_entry["version"] = sub.version
            sub_entry["kind"] = sub.kind
            sub_entry["verbs"] = list(sub.verbs)
            entries.append(sub_entry)
    entries.sort(key=lambda e: e["name"])
    document: dict[str, Any] = {"kind": "APIResourceList"}
    if group:
        # The legacy core list has no apiVersion; group lists do (recorded transcripts).
        document["apiVersion"] = "v1"
    document["groupVersion"] = f"{group}/{version}" if group else version
    document["resources"] = entries
    return document


def aggregated(resources: list[ResourceType], core: bool, api_version: str) -> dict[str, Any]:
    """Return aggregated discovery (``APIGroupDiscoveryList``) for ``/api`` or ``/apis``."""
    items: list[dict[str, Any]] = []
    groups = [("", ["v1"])] if core else _groups(resources)
    for name, versions in groups:
        version_docs = []
        for version in versions:
            served = sorted(
                (rt for rt in resources if rt.group == name and rt.version == version),
                key=lambda rt: rt.plural,
            )
            docs = []
            for rt in served:
                doc: dict[str, Any] = {
                    "resource": rt.plural,
                    "responseKind": {"group": "", "version": "", "kind": rt.kind},
                    "scope": "Namespaced" if rt.namespaced else "Cluster",
                    "singularResource": rt.singular,
                    "verbs": list(rt.verbs),
                }
                if rt.short_names:
                    doc["shortNames"] = list(rt.short_names)
                if rt.categories:
                    doc["categories"] = list(rt.categories)
                if rt.subresources:
                    doc["subresources"] = [
                        {
                            "subresource": sub.name,
                            "responseKind": {
                                "group": sub.group,
                                "version": sub.version,
                                "kind": sub.kind,
                            },
                            "verbs": list(sub.verbs),
                        }
                        for sub in rt.subresources
                    ]
                docs.append(doc)
            version_docs.append({"version": version, "resources": docs, "freshness": "Current"})
        items.append({"metadata": {"name": name} if name else {}, "versions": version_docs})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{api_version}",
        "metadata": {},
        "items": items,
    }


_PATCH_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")


def _params(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for n in names
    ]


def openapi_gv(resources: list[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    """Return a minimal OpenAPI v3 document for one group version (paths and operations)."""
    served = [rt for rt in resources if rt.group == group and rt.version == version]
    if not served:
        return None
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    paths: dict[str, Any] = {}
    for rt in served:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        scope = f"{prefix}/namespaces/{{namespace}}" if rt.namespaced else prefix
        item_ops = {
            "get": {"x-kubernetes-action": "get", "x-kubernetes-group-version-kind": gvk},
            "put": {
                "x-kubernetes-action": "put",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _params(_WRITE_PARAMS),
            },
            "patch": {
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _params(_PATCH_PARAMS),
            },
            "delete": {
                "x-kubernetes-action": "delete",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _params(("dryRun", "propagationPolicy")),
            },
        }
        paths[f"{scope}/{rt.plural}/{{name}}"] = item_ops
        paths[f"{scope}/{rt.plural}"] = {
            "get": {"x-kubernetes-action": "list", "x-kubernetes-group-version-kind": gvk},
            "post": {
                "x-kubernetes-action": "post",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": _params(_WRITE_PARAMS),
            },
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": {}},
    }


def openapi_root(resources: list[ResourceType]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Return the ``/openapi/v3`` index and the serialised per-group-version documents."""
    documents: dict[str, bytes] = {}
    seen = sorted({(rt.group, rt.version) for rt in resources})
    for group, version in seen:
        doc = openapi_gv(resources, group, version)
        if doc is None:
            continue
        key = f"apis/{group}/{version}" if group else f"api/{version}"
        documents[key] = json.dumps(doc, separators=(",", ":")).encode()
    paths = {
        key: {
            "serverRelativeURL": f"/openapi/v3/{key}?hash={hashlib.sha512(body).hexdigest().upper()}"
        }
        for key, body in sorted(documents.items())
    }
    return {"paths": paths}, documents


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def openapi_v2_protobuf(resources: list[ResourceType], version: str) -> bytes:
    """Return a minimal OpenAPI v2 document in gnostic protobuf form (``/openapi/v2``).

    kubectl up to 1.27 reads only this form to learn whether PATCH supports
    ``fieldValidation`` and ``dryRun`` for a kind (its QueryParamVerifier), so each
    resource gets a path whose ``patch`` operation names those query parameters and
    carries ``x-kubernetes-group-version-kind``.
    """
    # Field numbers from github.com/google/gnostic-models openapiv2/OpenAPIv2.proto.
    paths = b""
    for rt in sorted(resources, key=lambda r: (r.group, r.version, r.plural)):
        prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        scope = f"{prefix}/namespaces/{{namespace}}" if rt.namespaced else prefix
        parameters = b""
        for name in _PATCH_PARAMS:
            query = _field(2, "query") + _field(4, name) + _field(6, "string")
            non_body = _field(3, query)  # NonBodyParameter.query_parameter_sub_schema
            parameter = _field(2, non_body)  # Parameter.non_body_parameter
            parameters += _field(8, _field(1, parameter))  # Operation.parameters[].parameter
        gvk_yaml = f"group: {json.dumps(rt.group)}\nkind: {rt.kind}\nversion: {rt.version}\n"
        extension = _field(1, "x-kubernetes-group-version-kind") + _field(2, _field(2, gvk_yaml))
        operation = _field(5, f"patch{rt.kind}") + parameters + _field(13, extension)
        path_item = _field(8, operation)  # PathItem.patch
        paths += _field(2, _field(1, f"{scope}/{rt.plural}/{{name}}") + _field(2, path_item))
    info = _field(1, "Kubernetes") + _field(2, version)
    return _field(1, "2.0") + _field(2, info) + _field(10, paths)

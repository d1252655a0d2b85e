"""Tenancy: which kinds are namespaced, and what each team's objects may be.

One authority for every app kind (Service, StatefulService, MonitoringStack,
CustomResource, Manifests, with their overrides merged): a team's objects live in its
own namespace, or in a shared namespace fleet.yaml grants it; a cluster-scoped object
needs a fleet.yaml grant naming its kind for that team. A team's own file cannot grant
it anything, and a CRD cannot change what a built-in kind is.

The scope of built-in kinds comes from each Kubernetes release's OpenAPI paths
(``specc/data/kubernetes-scopes.json``, written by tools/derive_kubernetes_scopes.py),
never from a list kept by hand and never from the fleet's CRDs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from specc import DATA
from specc.errors import Finding, Position
from specc.objects import DesiredObject, group_of

#: The namespace of the agent, its Lease and the ApplySet parents.
AGENT_NAMESPACE = "specc-system"
#: Namespaces Kubernetes itself uses; no team may own them (``kube-*`` too).
SYSTEM_NAMESPACES = frozenset({"default", AGENT_NAMESPACE})
CRD_KIND = "CustomResourceDefinition.apiextensions.k8s.io"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


@functools.cache
def _table() -> dict[str, Any]:
    text = (DATA / "kubernetes-scopes.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return {k: v for k, v in data.items() if not k.startswith("_")}


@functools.cache
def _scopes(version: str) -> dict[str, bool]:
    """Return {Kind.group: namespaced} for ``version``; kinds of other releases fill gaps.

    A kind cluster-scoped in any release counts as cluster-scoped wherever its own
    release does not say, so an alpha kind the table lacks for one minor is not taken
    for a namespaced one.
    """
    table = _table()
    out: dict[str, bool] = {}
    for minor in sorted(table, key=lambda m: tuple(int(p) for p in m.split("."))):
        for kind in table[minor]["namespaced"]:
            out.setdefault(kind, True)
        for kind in table[minor]["cluster"]:
            out[kind] = False
    row = table.get(version)
    if row is not None:
        out.update({k: True for k in row["namespaced"]})
        out.update({k: False for k in row["cluster"]})
    return out


@functools.cache
def builtin_groups() -> frozenset[str]:
    """Return every API group a supported Kubernetes release serves ("" is core)."""
    return frozenset(g for row in _table().values() for g in row["groups"])


def reserved_group(group: str) -> bool:
    """Return whether a CRD may not define ``group``: built-in, or Kubernetes's own domains."""
    return (
        group in builtin_groups()
        or group in ("k8s.io", "kubernetes.io")
        or group.endswith((".k8s.io", ".kubernetes.io"))
    )


def reserved_namespace(name: str, agent_namespace: str = AGENT_NAMESPACE) -> str:
    """Return why ``name`` cannot be a team's namespace ("" when it can)."""
    if name.startswith("kube-"):
        return f"namespace {name!r} is reserved for Kubernetes (kube-*)"
    if name == "default":
        return "namespace 'default' is reserved for Kubernetes"
    if name in (AGENT_NAMESPACE, agent_namespace):
        return f"namespace {name!r} is the specc agent's (inventory, Lease)"
    return ""


def group_kind(api_version: str, kind: str) -> str:
    """Return ``Kind.group`` (``Kind`` for the core group)."""
    group = group_of(api_version)
    return f"{kind}.{group}" if group else kind


@dataclass(frozen=True)
class Scopes:
    """Knows whether a group-kind is namespaced: the release's built-ins, then the fleet's CRDs."""

    version: str = ""
    #: Scopes the fleet's CRDs declare, for groups no built-in kind uses.
    crd_scopes: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def from_crds(cls, crds: Iterable[dict[str, Any]], version: str = "") -> Scopes:
        scopes: dict[str, bool] = {}
        for crd in crds:
            spec = crd.get("spec")
            names = spec.get("names") if isinstance(spec, dict) else None
            kind = names.get("kind") if isinstance(names, dict) else None
            group = spec.get("group") if isinstance(spec, dict) else None
            # A malformed CRD defines nothing (the check stage reports it at its line);
            # one claiming a built-in group defines nothing either (crd_group_findings).
            named = isinstance(kind, str) and kind and isinstance(group, str) and group
            if named and isinstance(spec, dict) and not reserved_group(str(group)):
                scopes[f"{kind}.{group}"] = spec.get("scope") != "Cluster"
        return cls(version, scopes)

    def for_version(self, version: str) -> Scopes:
        return Scopes(version, self.crd_scopes)

    def scope(self, gk: str) -> bool | None:
        """Return True (namespaced), False (cluster-scoped) or None (kind unknown)."""
        builtin = _scopes(self.version).get(gk)
        if builtin is not None:
            return builtin
        return self.crd_scopes.get(gk)

    def namespaced(self, gk: str) -> bool:
        """Return whether objects of ``gk`` are placed in a namespace (unknown kinds are;
        the check stage refuses them)."""
        return self.scope(gk) is not False


def crd_group_findings(crds: Iterable[tuple[dict[str, Any], Position]]) -> list[Finding]:
    """Return a finding for each CRD that defines a kind in a built-in or Kubernetes group.

    Such a CRD would let a fleet redefine ``ClusterRoleBinding`` as namespaced (or
    shadow any built-in kind); the API server itself refuses ``*.k8s.io`` groups
    without an API review.
    """
    out = []
    for crd, where in crds:
        spec = crd.get("spec")
        group = spec.get("group") if isinstance(spec, dict) else None
        if isinstance(group, str) and reserved_group(group):
            why = "a built-in API group" if group in builtin_groups() else "Kubernetes's own"
            out.append(
                Finding(
                    where,
                    f"a CustomResourceDefinition may not define group {group!r} ({why}); "
                    "use a group of your own domain",
                    "spec.group",
                )
            )
    return out


@dataclass(frozen=True)
class Grant:
    """What fleet.yaml lets one team declare beyond its own namespace."""

    kinds: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()
    #: Its Namespace may enforce Pod Security privileged.
    privileged: bool = False


@dataclass(frozen=True)
class TenancyPolicy:
    """The tenancy rules of one cluster's render: team namespaces, grants, scopes."""

    scopes: Scopes
    #: team → its own namespace.
    namespaces: Mapping[str, str]
    grants: Mapping[str, Grant] = field(default_factory=dict)
    agent_namespace: str = AGENT_NAMESPACE

    @property
    def shared(self) -> frozenset[str]:
        """Namespaces specc writes into but never creates or prunes (granted in fleet.yaml)."""
        return frozenset(n for g in self.grants.values() for n in g.namespaces)

    def violations(self, objects: Iterable[DesiredObject], strict: bool = False) -> list[Finding]:
        """Return a finding for each object its team may not declare.

        Objects specc builds for a Team itself (origin ``Team/…``) are the platform's.
        ``strict`` (the sync's second look) also refuses kinds whose scope is unknown;
        at compile the check stage refuses those with a better message.
        """
        out: list[Finding] = []
        for obj in objects:
            problem = self.violation(obj, strict)
            if problem:
                out.append(Finding(obj.source, problem, subject=obj.ref))
        return out

    def violation(self, obj: DesiredObject, strict: bool = False) -> str:
        """Return why ``obj``'s team may not declare it ("" when it may)."""
        parts = obj.origin.split("/")
        if len(parts) == 2 and parts[0] == "Team":
            # specc builds these; only the namespace may clash, with an agent namespace
            # chosen at sync time (--parent-namespace) that validate could not know.
            ns = obj.name if obj.kind == "Namespace" and obj.api_version == "v1" else obj.namespace
            if ns is not None and reserved_namespace(ns, self.agent_namespace):
                return f"team {parts[1]!r}: {reserved_namespace(ns, self.agent_namespace)}"
            if obj.kind == "Namespace" and not self.grants.get(parts[1], Grant()).privileged:
                # A team's own Team file may tighten its namespace, never open it to pods
                # that take over their node: that is the platform's grant.
                meta = obj.body.get("metadata")
                labels = meta.get("labels") if isinstance(meta, dict) else None
                if isinstance(labels, dict) and labels.get(PSA_ENFORCE) == "privileged":
                    return (
                        f"team {parts[1]!r}: {PSA_ENFORCE}: privileged lets its pods take over "
                        "their node; it needs a fleet.yaml grant (spec.grants[].privileged)"
                    )
            return ""
        team = parts[1] if len(parts) == 3 else ""
        if team not in self.namespaces:
            return f"no team declares this object (origin {obj.origin!r})"
        gk = obj.key.group_kind
        grant = self.grants.get(team, Grant())
        scope = self.scopes.scope(gk)
        own = self.namespaces[team]
        if scope is None:
            if strict:
                return f"the scope of {gk} is unknown (no CRD in the fleet defines it)"
            return ""
        if scope:
            ns = obj.namespace or ""
            if ns == own:
                return ""
            if ns == self.agent_namespace or ns == AGENT_NAMESPACE:
                return f"namespace {ns!r} is the specc agent's; no team may write to it"
            if ns in grant.namespaces:
                return ""
            owner = next((t for t, n in self.namespaces.items() if n == ns), None)
            if owner:
                return (
                    f"namespace {ns!r} belongs to another team ({owner!r}); team {team!r} "
                    f"may only write to {own!r}"
                )
            return (
                f"namespace {ns!r} is not granted to team {team!r} (fleet.yaml "
                f"spec.grants[].namespaces); it may only write to {own!r}"
            )
        if gk not in grant.kinds:
            return (
                f"{gk} is cluster-scoped and team {team!r} is not granted it "
                "(fleet.yaml spec.grants[].kinds)"
            )
        if gk == "Namespace":
            name = obj.name
            if reserved_namespace(name, self.agent_namespace) or name in self.shared:
                return f"namespace {name!r} is not specc's to create (reserved or shared)"
            if name in self.namespaces.values():
                return f"namespace {name!r} is a team's; specc creates it from teams/"
        return ""

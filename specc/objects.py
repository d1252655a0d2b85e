"""The data that flows from compile to check, write, plan and apply: desired objects."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specc.errors import Position, object_ref
from specc.load import FieldPath, SourceMap

if TYPE_CHECKING:
    from specc.tenancy import TenancyPolicy

#: Label and annotation keys specc writes on every object.
MANAGED_BY = "app.kubernetes.io/managed-by"
SOURCE_ANNOTATION = "specc.dev/source"
TEAM_LABEL = "specc.dev/team"
PRUNE_ANNOTATION = "specc.dev/prune"
#: Opt-in on an object: a sync may delete and re-create it when a change cannot be made in place.
RECREATE_ANNOTATION = "specc.dev/recreate"
FIELD_MANAGER = "specc"


def source_annotation(path: str, origin: str) -> str:
    """Return the ``specc.dev/source`` value: the spec file and the app, ``path#origin``.

    No line number: a comment or an edit elsewhere in the file must not change every
    object (and make the next sync patch them). ``specc explain`` finds the line.
    """
    return f"{path}#{origin}" if origin else path


def group_of(api_version: str) -> str:
    """Return the API group of ``apiVersion`` ("" for the core group)."""
    return api_version.rpartition("/")[0]


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Identity of an object in a cluster: group, kind, namespace ("" if cluster-scoped), name."""

    group: str
    kind: str
    namespace: str
    name: str

    @property
    def group_kind(self) -> str:
        """``Kind.group`` as the ApplySet annotations spell it (``Kind`` for the core group)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def __str__(self) -> str:
        return object_ref(self.kind, self.namespace or None, self.name)

    @classmethod
    def of(cls, body: dict[str, Any]) -> ObjectKey:
        meta = body.get("metadata") or {}
        return cls(
            group_of(str(body.get("apiVersion", ""))),
            str(body.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name", "")),
        )


@dataclass(frozen=True)
class FieldSource:
    """Where the fields of an object given whole (Manifests, CustomResource) are written.

    ``prefix`` is the object's path in its document; ``moved`` names top-level fields
    written elsewhere (a CustomResource's ``spec`` is the app's ``spec.spec``).
    """

    source: SourceMap
    prefix: FieldPath = ()
    moved: tuple[tuple[str, FieldPath], ...] = ()

    def position(self, loc: FieldPath) -> Position:
        """Return the position of the field at ``loc`` in the object (its nearest written
        ancestor when the field itself is not written)."""
        path = (*self.prefix, *loc)
        for key, where in self.moved:
            if loc and loc[0] == key:
                path = (*where, *loc[1:])
                break
        return self.source.key(path)


@dataclass
class DesiredObject:
    """One Kubernetes object a commit declares for a cluster, and the spec line behind it."""

    body: dict[str, Any]
    source: Position
    #: The spec document that made it, as ``Kind/team/name`` (``Team/name`` for teams).
    origin: str = ""
    #: Objects given whole: where each of their fields is written.
    fields: FieldSource | None = None
    #: Objects specc builds: the spec field behind a part of the object, by the path of
    #: that part (``spec.template.spec.securityContext`` → ``spec.security``); the
    #: longest prefix of a path wins.
    locations: dict[FieldPath, Position] = field(default_factory=dict)

    def position_of(self, loc: FieldPath) -> Position:
        """Return where the field at ``loc`` of the body comes from in the fleet."""
        if self.fields is not None:
            return self.fields.position(loc)
        for n in range(len(loc), 0, -1):
            hit = self.locations.get(tuple(loc[:n]))
            if hit is not None:
                return hit
        return self.source

    @functools.cached_property
    def key(self) -> ObjectKey:
        # Computed once: plan, write and check ask for it many times per object.
        return ObjectKey.of(self.body)

    @property
    def ref(self) -> str:
        return str(self.key)

    @property
    def api_version(self) -> str:
        return str(self.body["apiVersion"])

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        ns = self.body["metadata"].get("namespace")
        return str(ns) if ns else None


@dataclass
class ClusterRender:
    """Everything a commit declares for one cluster, in a stable order."""

    cluster: str
    kubernetes_version: str
    objects: list[DesiredObject] = field(default_factory=list)
    #: origin → positions of the overrides merged into that app on this cluster.
    overrides: dict[str, list[Position]] = field(default_factory=dict)
    #: The fleet's name (fleet.yaml metadata.name): the identity its cluster's parent records.
    fleet: str = ""
    #: Origins of the apps that say ``adopt: true``: their objects may be taken from another owner.
    adopt: set[str] = field(default_factory=set)
    #: The tenancy rules the render passed; the sync looks again before its first request.
    tenancy: TenancyPolicy | None = None

    def by_key(self) -> dict[ObjectKey, DesiredObject]:
        return {o.key: o for o in self.objects}

"""Diff stage: two renders of a fleet → what changes on each cluster, field by field.

Pure: ``diff_renders(base, head)`` takes two lists of :class:`ClusterRender` (for
``specc diff --base REV``: the fleet at two git revisions) and returns a
:class:`FleetDiff`. ``diff_cluster`` works on one cluster's object lists, which is the
seam for a diff against a live cluster: give it the live objects (reduced to the fields
specc owns) as ``base`` and the commit's objects as ``head``.

What a reviewer sees, and why:

- Objects are *added*, *removed* (the sync will prune them) or *changed*; unchanged
  objects are skipped by body equality before any deep comparison.
- Field paths are written the way Kubernetes documents them
  (``spec.template.spec.containers[name=web].image``). A list whose items all carry a
  distinct ``name`` (containers, ports, env, volumes, volumeMounts) is keyed by it, so
  inserting an env var reports one added entry instead of shifting every index; keys
  that are not plain identifiers are quoted (``metadata.labels["app.kubernetes.io/name"]``,
  ``data["nginx.conf"]``). A changed list of scalars (``args``, ``command``) is one
  change of the whole list.
- The ``specc.dev/source`` annotation (spec file and app) changes when a spec moves to
  another file or app. It is a real change to the live object, but not one a reviewer
  needs to read: an object whose only change is that annotation counts as *source
  moved* (listed quietly, and not a change for the exit code); on an object with other
  changes the annotation is left out of its field list (the object's new source is
  shown with it anyway).
- A ConfigMap whose name carries a content hash (``web-config-<10 hex>``) is replaced,
  not edited, when its content changes. When exactly one such object of an app is
  removed and one with the same stem is added, they are shown as one change
  (``replaces`` names the old one) with the field diff of their content; the old one
  still counts as a prune.
- Values under ``data``/``stringData`` of a Secret are masked (``***``): a reviewer
  sees which keys are added, removed or changed, never their values.
- Prune warnings: removing a PersistentVolumeClaim, PersistentVolume, Namespace or
  CustomResourceDefinition without ``specc.dev/prune: allow`` is refused by the sync
  (``protected``); removing a StatefulSet leaves (or, with a ``Delete`` retention
  policy, deletes) its data volumes (``data-volumes``); pruning more than the fleet's
  prune budget of a cluster's objects is refused without ``--allow-mass-prune``
  (``mass-prune``); a cluster dropped from fleet.yaml is no longer synced at all
  (``cluster-removed``).
- Change warnings: a change the API server refuses in place (a StatefulSet's
  volumeClaimTemplates, serviceName, podManagementPolicy or selector; a Deployment's
  selector) ``needs-recreate``; a claim template's storage going down is refused by the
  sync (``storage-decrease``). See :mod:`specc.changerules`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from specc.changerules import decrease_message, forbidden_fields, recreate_message, storage_changes
from specc.fieldpath import Named, format_path
from specc.objects import (
    PRUNE_ANNOTATION,
    SOURCE_ANNOTATION,
    ClusterRender,
    DesiredObject,
    ObjectKey,
)

FieldOp = Literal["added", "removed", "changed"]
ClusterStatus = Literal["added", "removed", "changed", "unchanged"]
WarningReason = Literal[
    "protected",
    "data-volumes",
    "mass-prune",
    "cluster-removed",
    "needs-recreate",
    "storage-decrease",
]

#: What a masked Secret value is shown as.
MASK = "***"
#: Kinds the sync never deletes unless the live object carries ``specc.dev/prune: allow``
#: (the same set as ``specc.sync.plan.PROTECTED_KINDS``; a test keeps them equal).
PROTECTED_KINDS = frozenset(
    {
        "PersistentVolumeClaim",
        "PersistentVolume",
        "Namespace",
        "CustomResourceDefinition.apiextensions.k8s.io",
    }
)
#: Default share of a cluster's objects one sync may prune (``fleet.spec.prune.budget``).
DEFAULT_PRUNE_BUDGET = 0.25

_HASHED_NAME = re.compile(r"^(?P<stem>.+)-[0-9a-f]{10}$")
_SECRET_FIELDS = ("data", "stringData")


@dataclass(frozen=True)
class DiffOptions:
    """How to diff: the prune budget the sync would enforce on each cluster."""

    prune_budget: float = DEFAULT_PRUNE_BUDGET


@dataclass(frozen=True)
class FieldChange:
    """One field of an object that is added, removed or changed.

    ``old`` is ``None`` for an added field, ``new`` for a removed one (``op`` says
    which); Secret data values are already masked.
    """

    path: str
    op: FieldOp
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class ObjectEntry:
    """An object as a diff lists it: identity, spec line and the spec that made it."""

    key: ObjectKey
    api_version: str
    source: str
    origin: str

    @property
    def ref(self) -> str:
        return str(self.key)

    @classmethod
    def of(cls, obj: DesiredObject, key: ObjectKey | None = None) -> ObjectEntry:
        source = f"{obj.source.path}:{obj.source.line}"
        return cls(key or obj.key, obj.api_version, source, obj.origin)


@dataclass(frozen=True)
class ObjectChange:
    """An object present at both sides whose fields differ (``entry`` is the head side)."""

    entry: ObjectEntry
    fields: tuple[FieldChange, ...]
    #: The base object this one replaces, when a content-hashed name changed.
    replaces: ObjectKey | None = None

    @property
    def key(self) -> ObjectKey:
        return self.entry.key


@dataclass(frozen=True)
class PruneWarning:
    """Something about a removal that the sync would refuse, protect or leave behind."""

    reason: WarningReason
    #: ``Kind/namespace/name``, or "" for a warning about the whole cluster.
    subject: str
    message: str


@dataclass
class ClusterDiff:
    """What a change does to one cluster."""

    cluster: str
    status: ClusterStatus
    added: list[ObjectEntry] = field(default_factory=list)
    removed: list[ObjectEntry] = field(default_factory=list)
    changed: list[ObjectChange] = field(default_factory=list)
    #: Objects whose only change is the ``specc.dev/source`` annotation.
    source_moved: list[ObjectEntry] = field(default_factory=list)
    unchanged: int = 0
    warnings: list[PruneWarning] = field(default_factory=list)
    #: Objects the sync would delete: removed ones it does not protect, plus replaced
    #: content-hashed ones.
    prunes: int = 0
    #: ``prunes`` as a share of the objects on the cluster before the change.
    prune_share: float = 0.0

    @property
    def has_changes(self) -> bool:
        """Return whether anything but source annotations changes on this cluster."""
        return bool(self.added or self.removed or self.changed)


@dataclass
class FleetDiff:
    """What a change does to every cluster of the fleet, in fleet.yaml order."""

    clusters: list[ClusterDiff]
    prune_budget: float = DEFAULT_PRUNE_BUDGET

    @property
    def has_changes(self) -> bool:
        return any(c.has_changes for c in self.clusters)

    @property
    def warnings(self) -> list[tuple[str, PruneWarning]]:
        """Return every prune warning with the cluster it concerns."""
        return [(c.cluster, w) for c in self.clusters for w in c.warnings]


def diff_renders(
    base: Sequence[ClusterRender],
    head: Sequence[ClusterRender],
    options: DiffOptions | None = None,
) -> FleetDiff:
    """Return what changes on each cluster between two renders of a fleet.

    Clusters keep head order, followed by clusters only the base has. A cluster only
    at one side has all its objects added or removed.
    """
    options = options or DiffOptions()
    base_by_name = {r.cluster: r for r in base}
    head_names = {r.cluster for r in head}
    out: list[ClusterDiff] = []
    for render in head:
        before = base_by_name.get(render.cluster)
        out.append(
            diff_cluster(
                render.cluster,
                before.objects if before is not None else [],
                render.objects,
                options,
                status="added" if before is None else None,
            )
        )
    for render in base:
        if render.cluster not in head_names:
            out.append(diff_cluster(render.cluster, render.objects, [], options, status="removed"))
    return FleetDiff(out, options.prune_budget)


def diff_cluster(
    cluster: str,
    base: Iterable[DesiredObject],
    head: Iterable[DesiredObject],
    options: DiffOptions | None = None,
    status: Literal["added", "removed"] | None = None,
) -> ClusterDiff:
    """Return the diff of one cluster's objects; ``status`` marks a cluster added or removed."""
    options = options or DiffOptions()
    before = {o.key: o for o in base}
    after = {o.key: o for o in head}
    result = ClusterDiff(cluster, "unchanged")
    added_objs = [after[k] for k in sorted(after.keys() - before.keys())]
    removed_objs = [before[k] for k in sorted(before.keys() - after.keys())]
    pairs = _replacements(removed_objs, added_objs)
    replaced = {id(old) for old, _ in pairs} | {id(new) for _, new in pairs}

    # Renders are sorted already; only what is listed gets sorted below (cheaper).
    for key, new in after.items():
        old = before.get(key)
        if old is None:
            continue
        if old.body == new.body:
            result.unchanged += 1
        elif _without_source(old.body) == _without_source(new.body):
            result.source_moved.append(ObjectEntry.of(new, key))
        else:
            entry = ObjectEntry.of(new, key)
            result.changed.append(ObjectChange(entry, field_changes(old.body, new.body)))
    for old, new in pairs:
        # The new name is in the header ("replaces"); its field change would repeat it.
        fields = tuple(f for f in field_changes(old.body, new.body) if f.path != "metadata.name")
        result.changed.append(ObjectChange(ObjectEntry.of(new), fields, replaces=old.key))
    result.changed.sort(key=lambda c: c.key)
    for change in result.changed:
        if change.replaces is None:
            result.warnings += change_warnings(before[change.key], after[change.key], change.fields)
    result.source_moved.sort(key=lambda e: e.key)
    result.added = [ObjectEntry.of(o) for o in added_objs if id(o) not in replaced]
    result.removed = [ObjectEntry.of(o) for o in removed_objs if id(o) not in replaced]

    pruned = [o for o in removed_objs if id(o) not in replaced]
    result.prunes = sum(not _protected(o) for o in pruned) + len(pairs)
    result.prune_share = result.prunes / len(before) if before else 0.0
    if status == "removed":
        result.warnings.append(
            PruneWarning(
                "cluster-removed",
                "",
                f"cluster removed from fleet.yaml: sync no longer targets it, and its "
                f"{len(before)} objects are left on it as they are",
            )
        )
    else:
        result.warnings += prune_warnings(pruned, result, options, empty=not after)
    result.status = status or ("changed" if result.has_changes else "unchanged")
    return result


def change_warnings(
    old: DesiredObject, new: DesiredObject, fields: Sequence[FieldChange]
) -> list[PruneWarning]:
    """Return what a change of one object needs beyond an update: a re-creation (a field
    the API server will not change in place) or a refusal (a storage decrease)."""
    out = []
    forbidden = forbidden_fields(new.key.group_kind, [f.path for f in fields])
    if forbidden:
        out.append(
            PruneWarning("needs-recreate", new.ref, f"{new.ref} {recreate_message(forbidden)}")
        )
    if new.key.group_kind == "StatefulSet.apps":
        for c in storage_changes(old.body, new.body):
            if c.decrease:
                where = new.position_of(("spec", "volumeClaimTemplates"))
                out.append(
                    PruneWarning(
                        "storage-decrease", new.ref, f"{where}: {new.ref}: {decrease_message(c)}"
                    )
                )
    return out


def prune_warnings(
    removed: Sequence[DesiredObject],
    diff: ClusterDiff,
    options: DiffOptions,
    empty: bool = False,
) -> list[PruneWarning]:
    """Return what the sync would refuse or leave behind when it prunes ``removed``.

    The rules are those of ``specc.sync.plan``; the base objects stand in for the live
    ones (the opt-in annotation is read from them).
    """
    out: list[PruneWarning] = []
    for obj in removed:
        key = obj.key
        if _protected(obj):
            out.append(
                PruneWarning(
                    "protected",
                    obj.ref,
                    f"{obj.ref} is removed, but sync never deletes a {key.kind} without the "
                    f"annotation {PRUNE_ANNOTATION}: allow; it stays on the cluster",
                )
            )
        elif key.group == "apps" and key.kind == "StatefulSet":
            spec = obj.body.get("spec") or {}
            policy = (spec.get("persistentVolumeClaimRetentionPolicy") or {}).get("whenDeleted")
            if not spec.get("volumeClaimTemplates"):
                continue
            if policy == "Delete":
                text = "its data volumes are DELETED with it (whenDeleted: Delete)"
            else:
                text = (
                    "its data volumes (PersistentVolumeClaims) remain and must be removed by hand"
                )
            out.append(PruneWarning("data-volumes", obj.ref, f"{obj.ref} is removed: {text}"))
    if diff.prunes and empty:
        out.append(
            PruneWarning(
                "mass-prune",
                "",
                f"the change declares no objects for this cluster: sync refuses to prune "
                f"all {diff.prunes} (an empty render is taken for a broken commit)",
            )
        )
    elif diff.prune_share > options.prune_budget:
        out.append(
            PruneWarning(
                "mass-prune",
                "",
                f"prunes {diff.prunes} objects ({diff.prune_share:.0%} of the cluster's "
                f"objects, budget {options.prune_budget:.0%}): sync will refuse without "
                "--allow-mass-prune",
            )
        )
    return out


def _protected(obj: DesiredObject) -> bool:
    if obj.key.group_kind not in PROTECTED_KINDS:
        return False
    annotations = (obj.body.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(PRUNE_ANNOTATION) != "allow")


def _without_source(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    if SOURCE_ANNOTATION not in annotations:
        return body
    rest = {k: v for k, v in annotations.items() if k != SOURCE_ANNOTATION}
    return {**body, "metadata": {**meta, "annotations": rest}}


def _replacements(
    removed: Sequence[DesiredObject], added: Sequence[DesiredObject]
) -> list[tuple[DesiredObject, DesiredObject]]:
    """Pair removed and added objects that are one object under a new content-hashed name."""

    def stems(objs: Sequence[DesiredObject]) -> dict[tuple[Any, ...], list[DesiredObject]]:
        out: dict[tuple[Any, ...], list[DesiredObject]] = {}
        for o in objs:
            m = _HASHED_NAME.match(o.key.name)
            if m:
                k = o.key
                out.setdefault((k.group, k.kind, k.namespace, m["stem"], o.origin), []).append(o)
        return out

    old, new = stems(removed), stems(added)
    pairs = []
    for stem, olds in old.items():
        news = new.get(stem, [])
        if len(olds) == 1 and len(news) == 1:
            pairs.append((olds[0], news[0]))
    return pairs


# --- field-level changes ---------------------------------------------------------


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[FieldChange, ...]:
    """Return the field-level changes from ``old`` to ``new``, sorted by path.

    The source annotation is left out (see the module docstring); Secret data is masked.
    """
    secret = new.get("kind") == "Secret" and new.get("apiVersion") == "v1"
    changes = _changes(_keyed(old), _keyed(new))
    if not changes:
        # Only the order of a keyed list changed: compare by position instead.
        changes = _changes(old, new)
    out = []
    for path, op, before, after in changes:
        if path[:3] == ["metadata", "annotations", SOURCE_ANNOTATION]:
            continue
        if secret and path and path[0] in _SECRET_FIELDS:
            before, after = _mask(before), _mask(after)
        out.append(FieldChange(format_path(path), op, before, after))
    return tuple(sorted(out, key=lambda c: c.path))


def _keyed(value: Any) -> Any:
    """Return ``value`` with every list of uniquely named objects turned into a dict by name."""
    if isinstance(value, dict):
        return {k: _keyed(v) for k, v in value.items()}
    if isinstance(value, list):
        names = [i.get("name") if isinstance(i, dict) else None for i in value]
        if value and all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
            return {Named(n): _keyed(i) for n, i in zip(names, value, strict=True)}
        return [_keyed(i) for i in value]
    return value


Change = tuple[list[Any], FieldOp, Any, Any]


def _changes(old: Any, new: Any) -> list[Change]:
    """Return (path, op, old, new) for every differing field of two keyed bodies.

    A direct walk rather than deepdiff: deepdiff's tree view costs ~8 ms per object
    (14 s for a change touching all 7,590 objects of the 500-service benchmark fleet);
    this walk costs microseconds. tests/test_diff.py checks it against deepdiff.
    Values compare with ``==`` (so ``1 == 1.0 == True``): the schema check has already
    fixed every field's type, so such pairs cannot differ in a valid render.
    """
    out: list[Change] = []
    _walk(old, new, [], out)
    return out


def _walk(old: Any, new: Any, path: list[Any], out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k, v in old.items():
            if k not in new:
                out.append(([*path, k], "removed", _plain(v), None))
            elif v != new[k]:
                _walk(v, new[k], [*path, k], out)
        for k, v in new.items():
            if k not in old:
                out.append(([*path, k], "added", None, _plain(v)))
        return
    if isinstance(old, list) and isinstance(new, list):
        if all(not isinstance(x, dict | list) for x in (*old, *new)):
            # args, command, accessModes: one change of the whole list reads best.
            out.append((path, "changed", old, new))
            return
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            if a != b:
                _walk(a, b, [*path, i], out)
        for i in range(len(new), len(old)):
            out.append(([*path, i], "removed", _plain(old[i]), None))
        for i in range(len(old), len(new)):
            out.append(([*path, i], "added", None, _plain(new[i])))
        return
    out.append((path, "changed", _plain(old), _plain(new)))


def _plain(value: Any) -> Any:
    """Return ``value`` with lists keyed by name turned back into lists."""
    if isinstance(value, dict):
        if value and all(isinstance(k, Named) for k in value):
            return [_plain(v) for v in value.values()]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _mask(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: MASK for k in value}
    return MASK

"""Which changes the API server refuses to make in place, decided before asking it.

Pure: shared by ``diff`` (base render → head render) and ``plan`` (live → desired).

- A StatefulSet's spec may change in place only in ``replicas``, ``ordinals``,
  ``template``, ``updateStrategy``, ``revisionHistoryLimit``,
  ``persistentVolumeClaimRetentionPolicy`` and ``minReadySeconds``
  (ValidateStatefulSetUpdate); any other field (``volumeClaimTemplates``, ``selector``,
  ``serviceName``, ``podManagementPolicy``) needs the object re-created.
- A Deployment's, ReplicaSet's or DaemonSet's ``spec.selector`` is immutable (apps/v1).
- A PersistentVolumeClaim never shrinks: a claim template whose storage request goes
  down is refused outright (re-creating the StatefulSet would not shrink its volumes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from specc.errors import Finding
from specc.objects import ClusterRender
from specc.quantity import parse_quantity

#: StatefulSet spec fields that an update may change.
STATEFULSET_IN_PLACE = frozenset(
    {
        "replicas",
        "ordinals",
        "template",
        "updateStrategy",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
        "minReadySeconds",
    }
)
#: Kinds whose spec.selector may never change.
IMMUTABLE_SELECTOR = frozenset({"Deployment.apps", "ReplicaSet.apps", "DaemonSet.apps"})

_SPEC_FIELD = re.compile(r"^spec\.([A-Za-z0-9]+)")


def forbidden_fields(group_kind: str, paths: Iterable[str]) -> list[str]:
    """Return the ``spec.<field>`` names among changed ``paths`` that the API server
    refuses to update in place for ``group_kind`` (sorted, each once)."""
    out: set[str] = set()
    for path in paths:
        m = _SPEC_FIELD.match(path)
        if m is None:
            continue
        name = m.group(1)
        if (group_kind == "StatefulSet.apps" and name not in STATEFULSET_IN_PLACE) or (
            group_kind in IMMUTABLE_SELECTOR and name == "selector"
        ):
            out.add(f"spec.{name}")
    return sorted(out)


@dataclass(frozen=True)
class StorageChange:
    """A claim template's storage request, before and after."""

    claim: str
    old: str
    new: str

    @property
    def decrease(self) -> bool:
        return parse_quantity(self.new).value < parse_quantity(self.old).value

    @property
    def increase(self) -> bool:
        return parse_quantity(self.new).value > parse_quantity(self.old).value


def storage_changes(old: dict[str, Any], new: dict[str, Any]) -> list[StorageChange]:
    """Return the storage requests that differ between two StatefulSets' claim templates
    (matched by claim name)."""
    before = _claim_sizes(old)
    out = []
    for claim, size in _claim_sizes(new).items():
        was = before.get(claim)
        if was is not None and was != size:
            try:
                change = StorageChange(claim, was, size)
                if change.decrease or change.increase:
                    out.append(change)
            except ValueError:  # not a quantity: the schema check reports it
                continue
    return out


def _claim_sizes(sts: dict[str, Any]) -> dict[str, str]:
    spec = sts.get("spec") if isinstance(sts, dict) else None
    templates = spec.get("volumeClaimTemplates") if isinstance(spec, dict) else None
    out: dict[str, str] = {}
    for t in templates if isinstance(templates, list) else []:
        if not isinstance(t, dict):
            continue
        name = (t.get("metadata") or {}).get("name")
        size = (((t.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
        if isinstance(name, str) and isinstance(size, str | int | float):
            out[name] = str(size)
    return out


def decrease_message(change: StorageChange) -> str:
    return (
        f"storage of claim template {change.claim!r} goes down from {change.old} to "
        f"{change.new}: a PersistentVolumeClaim never shrinks; keep {change.old} or more "
        "(moving to smaller volumes is a migration: new StatefulService, copy, switch)"
    )


def recreate_message(fields: list[str]) -> str:
    return (
        f"needs recreate: {', '.join(fields)} cannot change in place (the API server "
        "refuses it); sync re-creates the object only with the annotation "
        "specc.dev/recreate: allow (StatefulSets with propagationPolicy Orphan: pods "
        "and volumes stay)"
    )


def decrease_findings(
    base: Iterable[ClusterRender], head: Iterable[ClusterRender], base_name: str
) -> list[Finding]:
    """Return an error for each StatefulSet claim template whose storage goes down
    between ``base`` and ``head`` (same cluster, same object), at the head's size line."""
    before = {(r.cluster, o.key): o for r in base for o in r.objects if o.kind == "StatefulSet"}
    out = []
    for render in head:
        for obj in render.objects:
            old = before.get((render.cluster, obj.key))
            if old is None:
                continue
            for change in storage_changes(old.body, obj.body):
                if change.decrease:
                    out.append(
                        Finding(
                            obj.position_of(("spec", "volumeClaimTemplates")),
                            f"{decrease_message(change)} (compared with {base_name})",
                            "",
                            obj.ref,
                        )
                    )
    return sorted(set(out))

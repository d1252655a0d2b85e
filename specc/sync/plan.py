"""Plan: desired objects + live members → what a sync would do, in kubectl's words.

Pure: no I/O. The live side comes from one LIST per group-kind; whether a suspected
difference is real is confirmed later by a server-side dry-run (see ``sync.apply``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from specc.objects import FIELD_MANAGER, PRUNE_ANNOTATION, DesiredObject, ObjectKey
from specc.sync.fields import differences, dotted, manager_fields, owned_paths, owners, resolves
from specc.sync.inventory import PART_OF, ApplySetParent
from specc.sync.waves import apply_order

Action = Literal["create", "configure", "unchanged", "prune", "skip"]

#: Kinds whose deletion loses data or other people's objects; pruned only with opt-in.
PROTECTED_KINDS = frozenset(
    {
        "PersistentVolumeClaim",
        "PersistentVolume",
        "Namespace",
        "CustomResourceDefinition.apiextensions.k8s.io",
    }
)


@dataclass(frozen=True)
class FieldChange:
    """One field a sync changes: its desired and live values, and who set the live one."""

    path: str
    desired: Any
    live: Any
    #: The other manager that last set the live value (drift), empty if specc or unknown.
    manager: str = ""
    time: str = ""

    @property
    def removed(self) -> bool:
        return self.desired is None and self.live is not None


@dataclass
class PlanEntry:
    action: Action
    key: ObjectKey
    desired: DesiredObject | None = None
    live: dict[str, Any] | None = None
    changes: list[FieldChange] = field(default_factory=list)
    reason: str = ""

    @property
    def drift(self) -> list[FieldChange]:
        """Fields another manager changed away from what the commit says."""
        return [c for c in self.changes if c.manager]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "object": str(self.key)}
        if self.desired is not None:
            out["source"] = f"{self.desired.source.path}:{self.desired.source.line}"
        if self.changes:
            out["changes"] = [
                {
                    "path": c.path,
                    "desired": c.desired,
                    "live": c.live,
                    **({"manager": c.manager, "time": c.time} if c.manager else {}),
                }
                for c in self.changes
            ]
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True)
class PlanOptions:
    """How far a sync may go."""

    prune: bool = True
    #: Share of the inventory one sync may delete without ``allow_mass_prune``.
    prune_budget: float = 0.25
    allow_mass_prune: bool = False


def default_plan_options() -> PlanOptions:
    return PlanOptions()


@dataclass
class Plan:
    cluster: str
    entries: list[PlanEntry] = field(default_factory=list)
    #: Why the sync must not go ahead (e.g. a mass prune); empty when it may.
    refusals: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(e.action for e in self.entries)
        return {a: c.get(a, 0) for a in ("create", "configure", "unchanged", "prune", "skip")}

    @property
    def in_sync(self) -> bool:
        return all(e.action in ("unchanged", "skip") for e in self.entries) and not self.refusals

    @property
    def drifted(self) -> list[PlanEntry]:
        return [e for e in self.entries if e.drift]

    def by_action(self, *actions: Action) -> list[PlanEntry]:
        return [e for e in self.entries if e.action in actions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "inSync": self.in_sync,
            "counts": self.counts(),
            "refusals": self.refusals,
            "entries": [e.to_dict() for e in self.entries],
        }


def compare(desired: DesiredObject, live: dict[str, Any]) -> list[FieldChange]:
    """Return the field changes that applying ``desired`` makes to ``live``."""
    changes = []
    for d in differences(desired.body, live):
        others = [o for o in owners(live, d.path) if o.manager != FIELD_MANAGER]
        who = others[0] if others else None
        changes.append(
            FieldChange(
                d.dotted, d.desired, d.live, who.manager if who else "", who.time if who else ""
            )
        )
    # Fields specc applied before that the commit no longer sets: the apply removes them.
    ours = manager_fields(live, FIELD_MANAGER)
    for tokens in owned_paths(ours):
        if not resolves(desired.body, tokens):
            changes.append(FieldChange(_token_path(tokens), None, _token_value(live, tokens)))
    return changes


def _token_path(tokens: tuple[str, ...]) -> str:
    parts: list[str | int] = []
    for t in tokens:
        parts.append(t[2:] if t.startswith("f:") else f"[{t[2:]}]")
    return dotted(tuple(parts)).replace(".[", "[")


def _token_value(live: Any, tokens: tuple[str, ...]) -> Any:
    value = live
    for t in tokens:
        if t.startswith("f:") and isinstance(value, dict):
            value = value.get(t[2:])
        else:
            return "…"
    return value


def protected(live: dict[str, Any], key: ObjectKey) -> bool:
    """Return whether deleting ``live`` needs the explicit ``specc.dev/prune: allow`` opt-in."""
    if key.group_kind not in PROTECTED_KINDS:
        return False
    notes = (live.get("metadata") or {}).get("annotations") or {}
    return notes.get(PRUNE_ANNOTATION) != "allow"


def plan(
    cluster: str,
    desired: Iterable[DesiredObject],
    live: dict[ObjectKey, dict[str, Any]],
    options: PlanOptions | None = None,
) -> Plan:
    """Return what syncing ``desired`` onto a cluster whose inventory holds ``live`` does.

    Only members of ``cluster``'s own ApplySet (by their part-of label) are pruned, and
    the budget counts them alone: ``live`` normally holds nothing else (observe lists by
    that label), but a plan must not delete what is not ours whatever it is given.
    """
    options = options or default_plan_options()
    applyset = ApplySetParent.for_cluster(cluster).id
    wanted = {o.key: o for o in desired}
    result = Plan(cluster)
    for wave in apply_order(list(wanted)):
        for key in wave:
            obj = wanted[key]
            current = live.get(key)
            if current is None:
                result.entries.append(PlanEntry("create", key, obj))
                continue
            changes = compare(obj, current)
            action: Action = "configure" if changes else "unchanged"
            result.entries.append(PlanEntry(action, key, obj, current, changes))

    if not options.prune:
        return result
    gone = [k for k in live if k not in wanted]
    prunes: list[PlanEntry] = []
    members = sum(1 for obj in live.values() if _member(obj, applyset))
    for wave in reversed(apply_order(gone)):
        for key in wave:
            gone_obj = live[key]
            if not _member(gone_obj, applyset):
                result.entries.append(
                    PlanEntry("skip", key, live=gone_obj, reason="not a member of this ApplySet")
                )
            elif protected(gone_obj, key):
                result.entries.append(
                    PlanEntry(
                        "skip",
                        key,
                        live=gone_obj,
                        reason=f"protected: {key.kind} is never pruned without the "
                        f"annotation {PRUNE_ANNOTATION}: allow",
                    )
                )
            else:
                prunes.append(PlanEntry("prune", key, live=gone_obj))
    refusal = _prune_refusal(len(prunes), members, len(wanted), options)
    if refusal:
        result.refusals.append(refusal)
        for p in prunes:
            p.action = "skip"
            p.reason = "prune refused: " + refusal
    result.entries += prunes
    return result


def _member(live: dict[str, Any], applyset: str) -> bool:
    labels = (live.get("metadata") or {}).get("labels") or {}
    return labels.get(PART_OF) == applyset


def _prune_refusal(prunes: int, inventory: int, desired: int, options: PlanOptions) -> str:
    if prunes == 0:
        return ""
    if desired == 0:
        # An empty render is far more often a broken commit than a wish to empty a cluster.
        return f"the commit declares no objects; refusing to prune all {prunes}"
    if options.allow_mass_prune:
        return ""
    share = prunes / inventory if inventory else 1.0
    if share > options.prune_budget:
        return (
            f"would prune {prunes} of {inventory} objects ({share:.0%}), over the budget of "
            f"{options.prune_budget:.0%}; pass --allow-mass-prune if that is intended"
        )
    return ""

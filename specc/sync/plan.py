"""Plan: desired objects + live members → what a sync would do, in kubectl's words.

Pure: no I/O. The live side comes from one LIST per group-kind (members), the specc
parents on the server, and one GET per object about to be created (``Observed``);
whether a suspected difference is real is confirmed later by a server-side dry-run
(see ``sync.apply``). Everything that guards a cluster is decided here, from that data:
who owns an object about to be taken (``ownership``), whether the cluster serves a
kind, which members are specc's to prune, and the prune budget.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from specc.changerules import decrease_message, forbidden_fields, recreate_message, storage_changes
from specc.fieldpath import spell, spell_tokens
from specc.objects import FIELD_MANAGER, PRUNE_ANNOTATION, DesiredObject, ObjectKey
from specc.sync.fields import differences, manager_fields, owned_paths, owners, resolves
from specc.sync.identity import specc_sets
from specc.sync.inventory import (
    PART_OF,
    ApplySetParent,
    label_managers,
    labelled_by,
    namespaces_of,
)
from specc.sync.ownership import owner_of
from specc.sync.waves import apply_order
from specc.tenancy import reserved_namespace

Action = Literal["create", "configure", "adopt", "unchanged", "prune", "skip"]
ACTIONS: tuple[Action, ...] = ("create", "configure", "adopt", "unchanged", "prune", "skip")

#: The prune budget when neither the operator nor the fleet says otherwise.
DEFAULT_PRUNE_BUDGET = 0.25
#: Where the parent records the prune budget of the last applied commit.
BUDGET_KEY = "pruneBudget"
#: How plan, sync and the agent's log word a create of an applied object someone deleted.
DELETED_REASON = "deleted out of band"

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
    #: When it did, if the server recorded it (it does not for /scale writes).
    time: str = ""
    #: The subresource it wrote through (``scale``), if any.
    subresource: str = ""

    @property
    def setter(self) -> str:
        """Return who set the live value, as reports print it (``kubectl via /scale at …``)."""
        text = self.manager
        if self.subresource:
            text += f" via /{self.subresource}"
        if self.time:
            text += f" at {self.time}"
        return text

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
    #: Why a sync will not write this object (another owner, a kind the cluster does not
    #: serve); the rest of the sync proceeds and the sync reports it as refused.
    refusal: str = ""
    #: For ``adopt``: who owns the live object now ("" when nobody does).
    owner: str = ""
    #: For ``create``: the object was applied before and someone deleted it (drift).
    deleted: bool = False

    @property
    def drift(self) -> list[FieldChange]:
        """Fields another manager changed away from what the commit says."""
        return [c for c in self.changes if c.manager]

    @property
    def drifted(self) -> bool:
        """Whether the live object left what was applied: fields changed, or deleted."""
        return self.deleted or any(c.manager for c in self.changes)

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
                    **({"manager": c.manager} if c.manager else {}),
                    **({"time": c.time} if c.manager and c.time else {}),
                    **({"subresource": c.subresource} if c.manager and c.subresource else {}),
                }
                for c in self.changes
            ]
        if self.reason:
            out["reason"] = self.reason
        if self.deleted:
            out["deletedOutOfBand"] = True
        if self.owner:
            out["owner"] = self.owner
        if self.refusal:
            out["refused"] = self.refusal
        return out


@dataclass(frozen=True)
class PlanOptions:
    """How far a sync may go."""

    prune: bool = True
    #: Share of the inventory one sync may delete without ``allow_mass_prune``, as the
    #: commit being applied says (fleet.yaml ``prune.budget``). It can only tighten the
    #: budget: see ``effective_budget``.
    prune_budget: float = DEFAULT_PRUNE_BUDGET
    #: The operator's ceiling (``--prune-budget``); None means DEFAULT_PRUNE_BUDGET.
    operator_budget: float | None = None
    allow_mass_prune: bool = False
    #: Take objects owned by someone else (``--adopt``).
    adopt: bool = False


def default_plan_options() -> PlanOptions:
    return PlanOptions()


@dataclass
class Observed:
    """What observe read besides the members: all that plan needs to know of the cluster."""

    #: This ApplySet's live parent (None when the server has none: nothing is ours to prune).
    parent: dict[str, Any] | None = None
    #: Every specc parent on the server (names other specc clusters as owners).
    parents: list[dict[str, Any]] = field(default_factory=list)
    #: Desired objects that exist live outside this ApplySet, from one GET per create.
    existing: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    #: (apiVersion, kind) of desired objects the cluster does not serve.
    unserved: frozenset[tuple[str, str]] = frozenset()


@dataclass
class Plan:
    cluster: str
    entries: list[PlanEntry] = field(default_factory=list)
    #: Why the sync must not go ahead (e.g. a mass prune); empty when it may.
    refusals: list[str] = field(default_factory=list)
    #: Things an operator must see even though the sync goes ahead (an override in use).
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(e.action for e in self.entries)
        out: dict[str, int] = {a: c.get(a, 0) for a in ACTIONS}
        out["refused"] = sum(1 for e in self.entries if e.refusal)
        return out

    @property
    def in_sync(self) -> bool:
        return (
            all(e.action in ("unchanged", "skip") and not e.refusal for e in self.entries)
            and not self.refusals
        )

    @property
    def refused(self) -> list[PlanEntry]:
        """Entries a sync will not write (other owner, kind not served)."""
        return [e for e in self.entries if e.refusal]

    @property
    def drifted(self) -> list[PlanEntry]:
        """Entries whose live object drifted: fields another manager changed, or deleted."""
        return [e for e in self.entries if e.drifted]

    def mark_deleted(self, applied: Callable[[ObjectKey], bool]) -> None:
        """Mark each create of an object ``applied`` says was applied before as drift."""
        for e in self.entries:
            if e.action == "create" and not e.refusal and applied(e.key):
                e.deleted = True
                e.reason = DELETED_REASON

    def by_action(self, *actions: Action) -> list[PlanEntry]:
        return [e for e in self.entries if e.action in actions]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "inSync": self.in_sync,
            "counts": self.counts(),
            "refusals": self.refusals,
            "warnings": self.warnings,
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
                spell(live, d.path, d.desired),  # the spelling diff and sync use too
                d.desired,
                d.live,
                who.manager if who else "",
                who.time if who else "",
                who.subresource if who else "",
            )
        )
    # Fields specc applied before that the commit no longer sets: the apply removes them.
    ours = manager_fields(live, FIELD_MANAGER)
    for tokens in owned_paths(ours):
        if not resolves(desired.body, tokens):
            changes.append(FieldChange(spell_tokens(tokens), None, _token_value(live, tokens)))
    return changes


def _token_value(live: Any, tokens: tuple[str, ...]) -> Any:
    value = live
    for t in tokens:
        if t.startswith("f:") and isinstance(value, dict):
            value = value.get(t[2:])
        else:
            return "…"
    return value


def _change_rules(entry: PlanEntry, result: Plan) -> None:
    """Mark a change the API server refuses in place as ``needs recreate`` (a warning),
    and refuse a storage decrease (volumes never shrink), against the live object."""
    assert entry.desired is not None and entry.live is not None
    forbidden = forbidden_fields(entry.key.group_kind, [c.path for c in entry.changes])
    if forbidden:
        entry.reason = f"needs recreate: {', '.join(forbidden)}"
        result.warnings.append(f"{entry.key}: {recreate_message(forbidden)}")
    if entry.key.group_kind == "StatefulSet.apps":
        shrinking = [c for c in storage_changes(entry.live, entry.desired.body) if c.decrease]
        if shrinking:
            where = entry.desired.position_of(("spec", "volumeClaimTemplates"))
            entry.refusal = f"{where}: " + "; ".join(decrease_message(c) for c in shrinking)


def protected(live: dict[str, Any], key: ObjectKey) -> bool:
    """Return whether deleting ``live`` needs the explicit ``specc.dev/prune: allow`` opt-in."""
    if key.group_kind not in PROTECTED_KINDS:
        return False
    if key.group_kind == "Namespace" and reserved_namespace(key.name):
        return True  # kube-*, default, specc-system: never, whatever the annotation says
    notes = (live.get("metadata") or {}).get("annotations") or {}
    return notes.get(PRUNE_ANNOTATION) != "allow"


def plan(
    cluster: str,
    desired: Iterable[DesiredObject],
    live: dict[ObjectKey, dict[str, Any]],
    options: PlanOptions | None = None,
    observed: Observed | None = None,
    adopt: Iterable[str] = (),
    applyset: str = "",
) -> Plan:
    """Return what syncing ``desired`` onto a cluster whose inventory holds ``live`` does.

    ``live`` holds the objects labelled as members of ``cluster``'s ApplySet. Of those
    the commit no longer declares, only specc's own are pruned: the part-of label set by
    specc's field manager, in a namespace the live parent lists (KEP-3659). The budget
    counts them alone. ``adopt`` names the origins (apps) whose objects may be taken
    from another owner. ``applyset`` is the set's id (default: the cluster's parent in
    specc-system).
    """
    options = options or default_plan_options()
    observed = observed or Observed()
    applyset = applyset or ApplySetParent.for_cluster(cluster).id
    wanted = {o.key: o for o in desired}
    result = Plan(cluster)
    known_sets = specc_sets(observed.parents)
    served_by_crd = _crd_kinds(wanted.values())
    adopting = set(adopt)
    for wave in apply_order(list(wanted)):
        for key in wave:
            obj = wanted[key]
            if (obj.api_version, obj.kind) in observed.unserved and (
                obj.api_version,
                obj.kind,
            ) not in served_by_crd:
                result.entries.append(
                    PlanEntry(
                        "create",
                        key,
                        obj,
                        refusal=f"the cluster does not serve {obj.api_version} {obj.kind}, "
                        "and the commit has no CustomResourceDefinition for it",
                    )
                )
                continue
            current = live.get(key)
            if current is None:
                other = observed.existing.get(key)
                if other is None:
                    result.entries.append(PlanEntry("create", key, obj))
                else:
                    result.entries.append(
                        _adoption(obj, other, applyset, known_sets, options, adopting)
                    )
                continue
            changes = compare(obj, current)
            action: Action = "configure" if changes else "unchanged"
            entry = PlanEntry(action, key, obj, current, changes)
            if changes:
                _change_rules(entry, result)
            result.entries.append(entry)

    if not options.prune:
        return result
    gone = [k for k in live if k not in wanted]
    prunes: list[PlanEntry] = []
    namespaces = namespaces_of(observed.parent)
    members = sum(
        1 for k, obj in live.items() if not not_ours(obj, k, applyset, observed.parent, namespaces)
    )
    for wave in reversed(apply_order(gone)):
        for key in wave:
            gone_obj = live[key]
            why_not = not_ours(gone_obj, key, applyset, observed.parent, namespaces)
            if why_not:
                result.entries.append(PlanEntry("skip", key, live=gone_obj, reason=why_not))
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
    budget, why = effective_budget(options, observed.parent)
    refusal = _prune_refusal(len(prunes), members, len(wanted), options, budget, why)
    if refusal:
        result.refusals.append(refusal)
        for p in prunes:
            p.action = "skip"
            p.reason = "prune refused: " + refusal
    result.entries += prunes
    return result


def _adoption(
    obj: DesiredObject,
    live: dict[str, Any],
    applyset: str,
    known_sets: dict[str, str],
    options: PlanOptions,
    adopting: set[str],
) -> PlanEntry:
    """Return the entry of a desired object that exists outside the set: adopt, or refuse."""
    owner = owner_of(live, applyset, known_sets)
    entry = PlanEntry("adopt", obj.key, obj, live, compare(obj, live), owner=owner)
    if not owner:
        entry.reason = "exists, no owner"
        return entry
    entry.reason = f"owned by {owner}"
    if not options.adopt and obj.origin not in adopting:
        where = f"adopt: true in {obj.origin}" if obj.origin else "adopt: true in its app"
        entry.refusal = f"owned by {owner}; not taken without --adopt or {where}"
    return entry


def _crd_kinds(desired: Iterable[DesiredObject]) -> set[tuple[str, str]]:
    """Return (apiVersion, kind) of every served version the commit's own CRDs define."""
    out = set()
    for obj in desired:
        if obj.key.group_kind != "CustomResourceDefinition.apiextensions.k8s.io":
            continue
        spec = obj.body.get("spec") or {}
        group = str(spec.get("group", ""))
        kind = str((spec.get("names") or {}).get("kind", ""))
        for version in spec.get("versions") or []:
            if isinstance(version, dict) and version.get("served", True):
                out.add((f"{group}/{version.get('name', '')}", kind))
    return out


def not_ours(
    live: dict[str, Any],
    key: ObjectKey,
    applyset: str,
    parent: dict[str, Any] | None,
    namespaces: set[str],
) -> str:
    """Return why a labelled live object is not specc's to prune ("" when it is)."""
    labels = (live.get("metadata") or {}).get("labels") or {}
    if labels.get(PART_OF) != applyset:
        return "not a member of this ApplySet"
    if parent is None:
        return "the server holds no ApplySet parent for this cluster: nothing is pruned"
    if not labelled_by(live):
        managers = ", ".join(label_managers(live)) or "someone else"
        return f"labelled {PART_OF} by {managers}, not by specc: not pruned"
    if key.namespace and key.namespace not in namespaces:
        return (
            f"namespace {key.namespace} is not among the ApplySet's namespaces "
            "(applyset.kubernetes.io/additional-namespaces): not pruned"
        )
    return ""


def effective_budget(options: PlanOptions, parent: dict[str, Any] | None) -> tuple[float, str]:
    """Return the prune budget that applies, and where it comes from.

    The stricter of: the commit's own (fleet.yaml), the last applied commit's as the
    parent records it, and the operator's ceiling (``--prune-budget``, default 25 %).
    A commit can tighten the budget at once; it cannot loosen it for its own sync, and
    never beyond what the operator allows.
    """
    candidates = [(options.prune_budget, "this commit's")]
    recorded = ((parent or {}).get("data") or {}).get(BUDGET_KEY)
    try:
        if recorded is not None:
            candidates.append((float(recorded), "the last applied commit's"))
    except ValueError:
        pass  # a hand-edited parent; the other two still hold
    ceiling = options.operator_budget
    candidates.append(
        (DEFAULT_PRUNE_BUDGET if ceiling is None else ceiling, "the operator's (--prune-budget)")
    )
    budget = min(b for b, _ in candidates)
    return budget, next(w for b, w in candidates if b == budget)


def _prune_refusal(
    prunes: int, inventory: int, desired: int, options: PlanOptions, budget: float, why: str
) -> str:
    if prunes == 0:
        return ""
    if desired == 0:
        # An empty render is far more often a broken commit than a wish to empty a cluster.
        return f"the commit declares no objects; refusing to prune all {prunes}"
    if options.allow_mass_prune:
        return ""
    share = prunes / inventory if inventory else 1.0
    if share > budget:
        return (
            f"would prune {prunes} of {inventory} objects ({share:.0%}), over the budget of "
            f"{budget:.0%} ({why}); pass --allow-mass-prune if that is intended"
        )
    return ""

"""Execute a plan: server-side apply in waves, then safe prune; update the inventory.

Side effects live here and only here. What to do was decided by ``plan.plan``; this
module observes the cluster, confirms suspected differences with a dry-run, writes,
and reports each object in kubectl's words.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from specc.errors import ClusterError, IdentityError, ObjectError, SpeccError
from specc.fieldpath import spell_server
from specc.objects import ClusterRender, DesiredObject, ObjectKey
from specc.progress import NULL, Progress
from specc.sync.cluster import ApiError, Cluster
from specc.sync.identity import foreign, mismatch_message
from specc.sync.inventory import (
    CLUSTER_LABEL,
    FLEET_LABEL,
    PARENT_NAMESPACE,
    PARENT_SELECTOR,
    PART_OF,
    ApplySetParent,
    group_kinds_of,
    labelled_by,
    namespaces_of,
    with_membership,
)
from specc.sync.plan import (
    BUDGET_KEY,
    DELETED_REASON,
    Observed,
    Plan,
    PlanEntry,
    PlanOptions,
    not_ours,
    plan,
)
from specc.sync.recreate import recreate, refused_fields
from specc.sync.waves import wave_of

Outcome = Literal["created", "configured", "unchanged", "pruned", "skipped", "refused", "failed"]
OUTCOMES: tuple[Outcome, ...] = (
    "created",
    "configured",
    "unchanged",
    "pruned",
    "skipped",
    "refused",
    "failed",
)
#: Where the parent records what the last applied render contained (sha256 of its objects).
CONTENT_KEY = "lastAppliedContent"


_VOLATILE = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")


@dataclass(frozen=True)
class SyncOptions:
    """What a sync may do; ``SyncOptions()`` is the agent's and CLI's default."""

    force: bool = True
    dry_run: bool = False
    plan: PlanOptions = field(default_factory=PlanOptions)
    concurrency: int = 8
    crd_timeout: float = 60.0
    #: The revision synced: a commit, ``<commit>-dirty`` for a working tree with
    #: uncommitted changes, or "" outside git.
    commit: str = ""
    #: Write even though the server holds another cluster or fleet (a migration); loud.
    allow_cluster_mismatch: bool = False
    #: Where the ApplySet parents live: the identity guard compares the parents there.
    #: Tests on a shared cluster give each test its own.
    parent_namespace: str = PARENT_NAMESPACE
    #: Whether ``commit`` descends from the revision the parent records as last applied
    #: (None: cannot tell). A sync that would go back in history is refused unless
    #: ``allow_rewind``: a stale copy of the fleet must not undo newer commits. The agent
    #: checks lineage itself and leaves this unset.
    descends: Callable[[str], bool | None] | None = None
    allow_rewind: bool = False
    #: The caller knows the applied revision itself (the agent, once it has applied one
    #: and checked lineage against it): a parent that lost its record hides no history.
    history_known: bool = False
    #: Asked between objects; True stops the sync after the object in hand (SIGTERM).
    cancel: Callable[[], bool] | None = None
    #: Told each phase (observe, apply waves, prune) and object done: the CLI's display.
    progress: Progress = NULL
    #: Keys of the objects the last applied revision contained, when the caller knows
    #: them (the agent does): a create of one of them is an out-of-band deletion. Without
    #: them, a plan of the revision the parent records as applied knows it all the same.
    previous: frozenset[ObjectKey] = frozenset()

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel()


@dataclass
class ObjectResult:
    key: ObjectKey
    outcome: Outcome
    message: str = ""
    #: Fields taken back from other managers: (field path, manager).
    taken: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"object": str(self.key), "result": self.outcome}
        if self.message:
            out["message"] = self.message
        if self.taken:
            out["taken"] = [{"field": f, "manager": m} for f, m in self.taken]
        return out


@dataclass
class SyncResult:
    cluster: str
    plan: Plan
    results: list[ObjectResult] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    dry_run: bool = False
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return (
            not self.refused
            and not self.interrupted
            and all(r.outcome not in ("failed", "refused") for r in self.results)
        )

    @property
    def writes(self) -> int:
        return sum(1 for r in self.results if r.outcome in ("created", "configured", "pruned"))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        for r in self.results:
            out[r.outcome] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "ok": self.ok,
            "dryRun": self.dry_run,
            "counts": self.counts(),
            "refused": self.refused,
            "warnings": self.plan.warnings,
            "interrupted": self.interrupted,
            "drift": [e.to_dict() for e in self.plan.drifted],
            "results": [r.to_dict() for r in self.results],
        }


def list_parents(cluster: Cluster, namespace: str = PARENT_NAMESPACE) -> list[dict[str, Any]]:
    """Return every specc ApplySet parent in ``namespace`` on the server (one LIST)."""
    res = cluster.resource("v1", "ConfigMap")
    if res is None:
        raise ClusterError(f"{cluster.server or 'the server'}: does not serve v1 ConfigMap")
    data = cluster.request(
        "list",
        "GET",
        res.path(namespace),
        [("labelSelector", PARENT_SELECTOR)],
        what=f"list the ApplySet parents in namespace {namespace}",
    )
    items = []
    for item in data.get("items") or []:
        item.setdefault("apiVersion", "v1")
        item.setdefault("kind", "ConfigMap")
        items.append(item)
    return items


def check_identity(
    cluster: Cluster, parent: ApplySetParent, parents: list[dict[str, Any]], allow: bool
) -> list[str]:
    """Raise IdentityError if the server holds another cluster or fleet; return warnings if allowed."""
    others = foreign(parent, parents)
    if not others:
        return []
    message = mismatch_message(parent, cluster.server, others)
    if not allow:
        raise IdentityError(message)
    return [message.split("; refusing", 1)[0] + "; writing anyway (--allow-cluster-mismatch)"]


def observe(
    cluster: Cluster,
    parent: ApplySetParent,
    desired: Iterable[DesiredObject],
    parents: list[dict[str, Any]] | None = None,
    concurrency: int = 8,
) -> tuple[dict[ObjectKey, dict[str, Any]], Observed]:
    """Return the live members of ``parent``'s ApplySet and the rest of what plan needs.

    One LIST per group-kind (those the commit declares plus those the parent says it
    had), filtered by the part-of label: a no-op sync costs exactly these requests and
    the LIST of parents. Desired objects that are not members are looked up one GET
    each (they are about to be created, so this costs nothing in the steady state);
    objects in a namespace the commit creates are not looked up.
    """
    if parents is None:
        parents = list_parents(cluster, parent.namespace)
    live_parent = next(
        (
            p
            for p in parents
            if (p.get("metadata") or {}).get("name") == parent.name
            and (p.get("metadata") or {}).get("namespace") == parent.namespace
        ),
        None,
    )
    wanted = list(desired)
    versions: dict[str, str] = {}
    unserved: set[tuple[str, str]] = set()
    for obj in wanted:
        versions.setdefault(obj.key.group_kind, obj.api_version)
        if cluster.resource(obj.api_version, obj.kind) is None:
            unserved.add((obj.api_version, obj.kind))
    for gk in group_kinds_of(live_parent):
        versions.setdefault(gk, "")
    members: dict[ObjectKey, dict[str, Any]] = {}
    selector = f"{PART_OF}={parent.id}"
    for gk, api_version in sorted(versions.items()):
        kind, _, group = gk.partition(".")
        res = cluster.resource(api_version, kind) if api_version else None
        if res is None:
            res = cluster.resource_for(group, kind)
        if res is None:
            continue  # not served (yet): e.g. a CRD this commit will create
        for item in cluster.list(res, selector):
            members[ObjectKey.of(item)] = item
    absent = [o for o in wanted if o.key not in members and (o.api_version, o.kind) not in unserved]
    existing = _existing(cluster, absent, concurrency)
    return members, Observed(live_parent, parents, existing, frozenset(unserved))


#: From this many objects of one kind in one namespace, one LIST is cheaper than a GET each.
LIST_INSTEAD_OF_GETS = 8


def _existing(
    cluster: Cluster, objects: list[DesiredObject], concurrency: int
) -> dict[ObjectKey, dict[str, Any]]:
    """Return those of ``objects`` that exist live: cluster-scoped first, then namespaced.

    Few objects of a kind in a namespace are looked up one GET each, many by one LIST of
    that namespace: a first sync of thousands of objects into an existing namespace costs
    a LIST page per 500 objects there, not a GET per object.
    """
    found: dict[ObjectKey, dict[str, Any]] = {}
    lock = threading.Lock()

    def keep(obj: DesiredObject, live: dict[str, Any]) -> None:
        live.setdefault("apiVersion", obj.api_version)
        live.setdefault("kind", obj.kind)
        with lock:
            found[obj.key] = live

    def look_up(group: list[DesiredObject]) -> None:
        first = group[0]
        if len(group) < LIST_INSTEAD_OF_GETS:
            for obj in group:
                live = cluster.get(obj.api_version, obj.kind, obj.namespace, obj.name)
                if live is not None:
                    keep(obj, live)
            return
        res = cluster.resource(first.api_version, first.kind)
        if res is None:
            return
        wanted = {o.name: o for o in group}
        for live in cluster.list(res, "", namespace=first.namespace):
            match = wanted.get(str((live.get("metadata") or {}).get("name", "")))
            if match is not None:
                keep(match, live)

    def groups(objs: list[DesiredObject]) -> list[list[DesiredObject]]:
        by: dict[tuple[str, str, str], list[DesiredObject]] = {}
        for o in objs:
            by.setdefault((o.api_version, o.kind, o.namespace or ""), []).append(o)
        small = [[o] for g in by.values() if len(g) < LIST_INSTEAD_OF_GETS for o in g]
        return small + [g for g in by.values() if len(g) >= LIST_INSTEAD_OF_GETS]

    scoped = [o for o in objects if not o.namespace]
    _run(look_up, groups(scoped), concurrency)
    # A namespace the commit declares and the cluster lacks holds nothing yet.
    missing = {o.name for o in scoped if o.key.group_kind == "Namespace" and o.key not in found}
    namespaced = [o for o in objects if o.namespace and o.namespace not in missing]
    _run(look_up, groups(namespaced), concurrency)
    return found


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _VOLATILE}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def confirm(cluster: Cluster, result: Plan, concurrency: int = 8) -> None:
    """Demote ``configure`` entries to ``unchanged`` when a server-side dry-run shows no change.

    The comparison in ``plan`` cannot know every default the server adds; the server can.
    """
    suspects = result.by_action("configure")

    def dry(entry: PlanEntry) -> None:
        assert entry.desired is not None and entry.live is not None
        try:
            answer = cluster.apply(entry.desired.body, force=True, dry_run=True)
        except SpeccError:
            return  # the real apply will report it
        if _strip(answer) == _strip(entry.live):
            entry.action = "unchanged"
            entry.changes = []

    _run(dry, suspects, concurrency)


def _run(func: Any, items: list[Any], concurrency: int) -> list[Any]:
    if len(items) <= 1 or concurrency <= 1:
        return [func(i) for i in items]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(func, items))


def plan_cluster(
    cluster: Cluster, render: ClusterRender, options: SyncOptions | None = None
) -> tuple[Plan, ApplySetParent, dict[str, Any] | None]:
    """Return the confirmed plan of syncing ``render`` onto ``cluster``.

    Raises IdentityError, before any other request, when the server holds another
    cluster of the fleet or another fleet (unless ``allow_cluster_mismatch``).
    """
    options = options or SyncOptions()
    parent = ApplySetParent.for_cluster(render.cluster, render.fleet, options.parent_namespace)
    refusals = tenancy_refusals(render, parent.namespace)
    if refusals:
        # Before the first request: a render that escapes its teams is not even observed.
        return Plan(render.cluster, refusals=refusals), parent, None
    options.progress.phase("observe", total=len(render.objects))
    parents = list_parents(cluster, parent.namespace)
    warnings = check_identity(cluster, parent, parents, options.allow_cluster_mismatch)
    mismatched = scope_mismatches(cluster, render)
    if mismatched:
        return Plan(render.cluster, refusals=mismatched), parent, None
    desired = with_membership(render.objects, parent)
    live, observed = observe(cluster, parent, desired, parents, options.concurrency)
    options.progress.update(len(render.objects))
    result = plan(
        render.cluster, desired, live, options.plan, observed, render.adopt, applyset=parent.id
    )
    result.warnings[:0] = warnings
    _check_lineage(result, observed.parent, options)
    if not (options.allow_rewind or options.history_known):
        _check_orphans(result, live, observed.parent, parent)
    confirm(cluster, result, options.concurrency)
    if result.by_action("create"):
        recorded = ((observed.parent or {}).get("data") or {}).get(CONTENT_KEY)
        if recorded and recorded == render_digest(render.objects):
            result.mark_deleted(lambda _: True)  # this very render was applied: all existed
        elif options.previous:
            result.mark_deleted(options.previous.__contains__)
    return result, parent, observed.parent


def tenancy_refusals(render: ClusterRender, agent_namespace: str) -> list[str]:
    """Return why ``render`` breaks its own tenancy rules (a second look after compile).

    Compile refuses such a render already; this guards a render that reached the sync
    another way (a bug, a caller building one), and the agent's own namespace, which
    may differ from the default one compile knows.
    """
    if render.tenancy is None:
        return []
    policy = dataclasses.replace(render.tenancy, agent_namespace=agent_namespace)
    return [
        f"{f.subject}: {f.message} ({f.position})"
        for f in policy.violations(render.objects, strict=True)
    ]


@dataclass
class Heal:
    """A targeted plan and apply of one object: what the plan said and what the apply did."""

    entry: PlanEntry
    result: ObjectResult | None = None

    @property
    def wrote(self) -> bool:
        return self.result is not None and self.result.outcome in ("created", "configured")


def heal(
    cluster: Cluster,
    desired: DesiredObject,
    applyset: str,
    observed: Observed,
    options: SyncOptions,
    adopt: Iterable[str] = (),
) -> Heal:
    """Plan and apply one member of the ApplySet, as a full sync would, and nothing else.

    ``desired`` carries the membership label; ``observed`` is what the last full sync
    read (parents, the live parent), which a heal does not read again: a heal between
    resyncs costs one GET, a dry-run if the comparison suspects a change, and the apply.
    Never prunes; an object now owned by someone else is refused as in a sync.
    """
    key = desired.key
    try:
        live = cluster.get(desired.api_version, desired.kind, desired.namespace, desired.name)
    except SpeccError as exc:
        # A failed heal, as a failed apply is: the healer queues it again; raised, it
        # would drop this drift and the others taken with it until the next resync.
        return Heal(PlanEntry("configure", key, desired), ObjectResult(key, "failed", str(exc)))
    labels = ((live or {}).get("metadata") or {}).get("labels") or {}
    members: dict[ObjectKey, dict[str, Any]] = {}
    existing: dict[ObjectKey, dict[str, Any]] = {}
    if live is not None:
        live.setdefault("apiVersion", desired.api_version)
        live.setdefault("kind", desired.kind)
        (members if labels.get(PART_OF) == applyset else existing)[key] = live
    scope = Observed(observed.parent, observed.parents, existing, observed.unserved)
    plan_options = replace(options.plan, prune=False)
    result = plan("", [desired], members, plan_options, scope, adopt, applyset=applyset)
    confirm(cluster, result, 1)
    (entry,) = result.entries
    if entry.action == "create":
        entry.deleted = True
        entry.reason = DELETED_REASON
    if entry.refusal:
        return Heal(entry, ObjectResult(key, "refused", entry.refusal))
    if entry.action not in ("create", "configure", "adopt"):
        return Heal(entry)
    return Heal(entry, _apply_one(cluster, entry, options))


def scope_mismatches(cluster: Cluster, render: ClusterRender) -> list[str]:
    """Return the objects whose namespace disagrees with the scope the cluster serves.

    Tenancy was judged with the scopes of the Kubernetes release and the fleet's CRDs;
    a CRD in the fleet that says Namespaced for a kind the cluster serves cluster-scoped
    would otherwise let a team's "namespaced" object be applied cluster-wide. Kinds the
    cluster does not serve yet (a CRD the render brings) are judged by the fleet alone.
    """
    out = []
    seen: dict[tuple[str, str], bool | None] = {}
    for obj in render.objects:
        kind = (obj.api_version, obj.kind)
        if kind not in seen:
            res = cluster.resource(*kind)
            seen[kind] = None if res is None else res.namespaced
        served = seen[kind]
        if served is not None and served != bool(obj.namespace):
            scope = "namespaced" if served else "cluster-scoped"
            placed = "has no namespace" if served else "placed it in a namespace"
            out.append(
                f"{obj.ref}: the cluster serves {obj.api_version} {obj.kind} as {scope}, but "
                f"the render {placed} for it (a CRD in the fleet of another scope than the "
                f"cluster's?) ({obj.source})"
            )
    return out


def _check_lineage(result: Plan, live_parent: dict[str, Any] | None, options: SyncOptions) -> None:
    """Refuse (or warn about) a sync whose revision does not descend from the applied one."""
    recorded = str(((live_parent or {}).get("data") or {}).get("lastAppliedCommit") or "")
    if options.descends is None or not recorded or options.allow_rewind:
        return
    verdict = options.descends(recorded)
    if verdict is None:
        result.warnings.append(
            f"cluster {result.cluster}: cannot tell whether this fleet descends from the "
            f"applied revision {recorded} (not a git checkout)"
        )
    elif not verdict:
        ours = options.commit or "this fleet"
        result.refusals.append(
            f"the cluster was last synced from {recorded}, and {ours} does not descend from "
            "it (a stale copy, or an older branch?); pass --allow-rewind to go back"
        )


#: How many of the members found without their parent's record a refusal names.
ORPHANS_NAMED = 5


def _check_orphans(
    result: Plan,
    members: dict[ObjectKey, dict[str, Any]],
    live_parent: dict[str, Any] | None,
    parent: ApplySetParent,
) -> None:
    """Refuse a sync whose parent lost its record while specc's members remain.

    The history guard compares with the revision the parent records: a deleted parent
    (or one re-created empty) would turn it off. Members specc labelled (its field
    manager set the part-of label) of group-kinds the parent does not list are the sign:
    a first sync lists every group-kind on the parent before any member exists. Found
    from the LISTs of members the plan makes anyway.
    """
    listed = group_kinds_of(live_parent)
    orphans = sorted(
        key
        for key, live in members.items()
        if key.group_kind not in listed
        and labelled_by(live)
        and not (live.get("metadata") or {}).get("deletionTimestamp")  # being pruned
    )
    if not orphans:
        return
    named = ", ".join(str(k) for k in orphans[:ORPHANS_NAMED])
    more = len(orphans) - ORPHANS_NAMED
    if more > 0:
        named += f" and {more} more"
    state = "is missing" if live_parent is None else "does not list them"
    result.refusals.append(
        f"the ApplySet parent {parent.namespace}/{parent.name} {state}, yet "
        f"{len(orphans)} objects carry its {PART_OF} label as specc wrote it ({named}): "
        "the record of the applied revision is gone, so the history guard cannot check "
        "this one (parent deleted by hand?); pass --allow-rewind to sync anyway and "
        "re-create the parent"
    )


def sync(cluster: Cluster, render: ClusterRender, options: SyncOptions | None = None) -> SyncResult:
    """Make ``cluster`` hold what ``render`` declares; return what happened to each object."""
    options = options or SyncOptions()
    the_plan, parent, live_parent = plan_cluster(cluster, render, options)
    out = SyncResult(render.cluster, the_plan, dry_run=options.dry_run)
    if the_plan.refusals:
        out.refused = list(the_plan.refusals)
        out.results = [ObjectResult(e.key, "skipped", e.reason) for e in the_plan.by_action("skip")]
        out.results += [ObjectResult(e.key, "refused", e.refusal) for e in the_plan.refused]
        return out
    if options.dry_run:
        out.results = [_planned(e) for e in the_plan.entries]
        return out

    previous = group_kinds_of(live_parent)
    writes = [e for e in the_plan.by_action("create", "configure", "adopt") if not e.refusal]
    namespaces = namespaces_of(live_parent)

    def ours(e: PlanEntry) -> bool:
        return e.live is not None and not not_ours(
            e.live, e.key, parent.id, live_parent, namespaces
        )

    # KEP-3659: the parent lists every group-kind and namespace before members of a new
    # kind or namespace exist, and keeps those of members about to be pruned until they
    # are gone, so that an interrupted sync still finds them next time.
    members = [e.key for e in writes] + [
        e.key for e in the_plan.entries if e.action in ("unchanged", "prune", "skip") and ours(e)
    ]
    if writes or live_parent is None:
        _ensure_parent(cluster, parent, members, previous, _status(live_parent, options, "syncing"))

    by_wave: dict[int, list[PlanEntry]] = {}
    for e in writes:
        by_wave.setdefault(wave_of(e.key), []).append(e)
    failed = False
    progress = options.progress

    def apply_one(e: PlanEntry) -> ObjectResult:
        r = _apply_one(cluster, e, options)
        progress.advance()
        return r

    for n, wave in enumerate(sorted(by_wave), 1):
        progress.phase(f"apply wave {n}/{len(by_wave)}", total=len(by_wave[wave]))
        results = _run(apply_one, by_wave[wave], options.concurrency)
        out.results += results
        failed = failed or any(r.outcome == "failed" for r in results)
        crds = [
            e
            for e in by_wave[wave]
            if e.key.group_kind == "CustomResourceDefinition.apiextensions.k8s.io"
        ]
        if crds and not failed:
            failed = not _wait_established(cluster, crds, options.crd_timeout, out)
        if options.cancelled():
            out.interrupted = True
        if failed or out.interrupted:
            break  # later waves depend on earlier ones
    out.results += [ObjectResult(e.key, "unchanged") for e in the_plan.by_action("unchanged")]
    out.results += [ObjectResult(e.key, "skipped", e.reason) for e in the_plan.by_action("skip")]
    out.results += [ObjectResult(e.key, "refused", e.refusal) for e in the_plan.refused]

    prunes = the_plan.by_action("prune")
    failed = failed or out.interrupted
    if failed:
        # Prune only after a successful apply: a half-applied commit must not delete.
        out.results += [
            ObjectResult(e.key, "skipped", "apply failed; prune postponed") for e in prunes
        ]
    elif prunes:
        progress.phase("prune", total=len(prunes))
        for e in prunes:
            out.results.append(_prune_one(cluster, e, parent, live_parent))
            progress.advance()
    final = "applied" if out.ok else "failed"
    if (
        writes
        or prunes
        or the_plan.refused
        or live_parent is None
        or _parent_stale(live_parent, parent, options)
    ):
        kept = [e.key for e in writes] + [e.key for e in the_plan.by_action("unchanged")]
        # Members kept back from prune (protected kinds) stay in the inventory: were their
        # group-kind dropped from the parent, no later sync would see them again.
        kept += [e.key for e in the_plan.by_action("skip") if ours(e)]
        if failed:
            kept += [e.key for e in prunes]
        else:  # a member whose delete failed stays listed: the next sync finds it again
            undeleted = {r.key for r in out.results if r.outcome == "failed"}
            kept += [e.key for e in prunes if e.key in undeleted]
        status = _status(live_parent, options, final, len(kept))
        if final == "applied":
            status[BUDGET_KEY] = f"{options.plan.prune_budget:g}"
            status[CONTENT_KEY] = render_digest(render.objects)
        # What the last sync did, in kubectl's words: `specc status` shows it.
        status["lastCounts"] = ",".join(f"{k}={n}" for k, n in out.counts().items() if n)
        if not out.ok:
            failures = [
                f"{r.key}: {r.message}" for r in out.results if r.outcome in ("failed", "refused")
            ]
            status["lastError"] = ("; ".join(failures) or "interrupted")[:4000]
        _ensure_parent(cluster, parent, kept, set(), status)
    return out


def render_digest(objects: Iterable[DesiredObject]) -> str:
    """Return ``sha256:<hex>`` of the rendered objects: what a revision really contained."""
    import hashlib
    import json

    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.key):
        digest.update(json.dumps(obj.body, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def read_status(cluster: Cluster, parent: ApplySetParent) -> dict[str, str]:
    """Return the status the parent records (last applied commit, result, error...)."""
    live = cluster.get("v1", "ConfigMap", parent.namespace, parent.name)
    return dict((live or {}).get("data") or {})


def record_status(cluster: Cluster, parent: ApplySetParent, updates: dict[str, str | None]) -> None:
    """Merge ``updates`` into the parent's status (None removes a key), keeping its inventory.

    Checks the server's identity first: a status is a write like any other.
    """
    parents = list_parents(cluster, parent.namespace)
    check_identity(cluster, parent, parents, allow=False)
    live = next((p for p in parents if p["metadata"].get("name") == parent.name), None)
    data = dict((live or {}).get("data") or {})
    for k, v in updates.items():
        if v is None:
            data.pop(k, None)
        else:
            data[k] = v
    if live is None:
        _ensure_parent(cluster, parent, [], set(), data)
        return
    body = parent.body([], data)
    # A caller that does not know the fleet must not drop the identity a sync recorded.
    live_labels = (live.get("metadata") or {}).get("labels") or {}
    for key in (FLEET_LABEL, CLUSTER_LABEL):
        if key in live_labels and key not in body["metadata"]["labels"]:
            body["metadata"]["labels"][key] = live_labels[key]
    body["metadata"]["annotations"] = {
        k: v
        for k, v in ((live.get("metadata") or {}).get("annotations") or {}).items()
        if k.startswith("applyset.")
    }
    cluster.apply(body, force=True)


def _planned(entry: PlanEntry) -> ObjectResult:
    words: dict[str, Outcome] = {
        "create": "created",
        "configure": "configured",
        "adopt": "configured",
        "unchanged": "unchanged",
        "prune": "pruned",
        "skip": "skipped",
    }
    if entry.refusal:
        return ObjectResult(entry.key, "refused", entry.refusal)
    return ObjectResult(
        entry.key,
        words[entry.action],
        entry.reason + (" (dry run)" if entry.action != "unchanged" else ""),
    )


def _status(
    live_parent: dict[str, Any] | None, options: SyncOptions, result: str, count: int | None = None
) -> dict[str, str]:
    data = dict((live_parent or {}).get("data") or {})
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if options.commit:
        data["lastAttemptedCommit"] = options.commit
    data["lastResult"] = result
    data["lastSyncTime"] = now
    if result == "applied":
        if options.commit:
            data["lastAppliedCommit"] = options.commit
        data["lastAppliedTime"] = now
        data.pop("lastError", None)
    if count is not None:
        data["objects"] = str(count)
    return data


def _parent_stale(
    live_parent: dict[str, Any], parent: ApplySetParent, options: SyncOptions
) -> bool:
    data = live_parent.get("data") or {}
    if options.commit and data.get("lastAppliedCommit") != options.commit:
        return True
    if data.get("lastResult") != "applied" or BUDGET_KEY not in data:
        return True
    # A parent from before identities were recorded gets them on the next sync.
    labels = (live_parent.get("metadata") or {}).get("labels") or {}
    return any(labels.get(k) != v for k, v in parent.labels().items())


def _ensure_parent(
    cluster: Cluster,
    parent: ApplySetParent,
    members: list[ObjectKey],
    extra_group_kinds: set[str],
    status: dict[str, str],
) -> None:
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": parent.namespace, "labels": {"app.kubernetes.io/managed-by": "specc"}},
    }
    cluster.apply(ns, force=True)
    body = parent.body(members, status)
    if extra_group_kinds:
        from specc.sync.inventory import GROUP_KINDS

        kinds = set(body["metadata"]["annotations"][GROUP_KINDS].split(",")) | extra_group_kinds
        body["metadata"]["annotations"][GROUP_KINDS] = ",".join(sorted(k for k in kinds if k))
    cluster.apply(body, force=True)


def _conflicts(exc: ApiError, body: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Return (field, manager) of each conflict the server names, the field spelled as
    plan and diff spell it (``body``, the applied object, tells dotted keys apart)."""
    taken = []
    for cause in exc.causes:
        if cause.get("reason") == "FieldManagerConflict":
            message = str(cause.get("message", ""))
            manager = message.split('"')[1] if '"' in message else message
            taken.append((spell_server(str(cause.get("field", "")), body), manager))
    return taken


def _apply_one(cluster: Cluster, entry: PlanEntry, options: SyncOptions) -> ObjectResult:
    assert entry.desired is not None
    if options.cancelled():
        return ObjectResult(entry.key, "skipped", "interrupted before it was applied")
    body = entry.desired.body
    taken: list[tuple[str, str]] = []
    verb: Outcome = "created" if entry.action == "create" else "configured"
    adopted = ""
    if entry.action == "adopt":
        adopted = f"adopted from {entry.owner}" if entry.owner else "adopted"
    try:
        try:
            cluster.apply(body, force=False)
        except ApiError as exc:
            if exc.status != 409 or exc.reason != "Conflict":
                raise
            taken = _conflicts(exc, body)
            if not options.force:
                fields = ", ".join(f"{f} (owned by {m})" for f, m in taken)
                return ObjectResult(
                    entry.key, "failed", f"conflicts: {fields}; sync with force to take them", taken
                )
            cluster.apply(body, force=True)
    except ApiError as exc:
        refused = refused_fields(exc, entry)
        if refused is None:
            return ObjectResult(entry.key, "failed", str(exc))
        outcome, message = recreate(cluster, entry, exc, refused)
        return ObjectResult(
            entry.key, "configured" if outcome == "configured" else "failed", message
        )
    except (ObjectError, ClusterError) as exc:
        return ObjectResult(entry.key, "failed", str(exc))
    note = adopted or (DELETED_REASON if entry.deleted else "")
    return ObjectResult(entry.key, verb, note, taken)


def _wait_established(
    cluster: Cluster, crds: list[PlanEntry], timeout: float, out: SyncResult
) -> bool:
    deadline = time.monotonic() + timeout
    for e in crds:
        assert e.desired is not None
        while True:
            live = cluster.get(
                e.desired.api_version, "CustomResourceDefinition", None, e.desired.name
            )
            conditions = ((live or {}).get("status") or {}).get("conditions") or []
            if any(
                c.get("type") == "Established" and c.get("status") == "True" for c in conditions
            ):
                cluster.forget(str((e.desired.body.get("spec") or {}).get("group", "")))
                break
            if time.monotonic() > deadline:
                out.results.append(
                    ObjectResult(e.key, "failed", f"not Established after {timeout:.0f}s")
                )
                return False
            time.sleep(0.1)
    return True


def _prune_one(
    cluster: Cluster, entry: PlanEntry, parent: ApplySetParent, live_parent: dict[str, Any] | None
) -> ObjectResult:
    live = entry.live or {}
    why = not_ours(live, entry.key, parent.id, live_parent, namespaces_of(live_parent))
    if why:  # never delete what is not ours, whatever the plan says
        return ObjectResult(entry.key, "skipped", why)
    try:
        cluster.delete(entry.key, str(live.get("apiVersion", "")))
    except SpeccError as exc:
        return ObjectResult(entry.key, "failed", f"prune failed: {exc}")
    return ObjectResult(entry.key, "pruned")

"""Execute a plan: server-side apply in waves, then safe prune; update the inventory.

Side effects live here and only here. What to do was decided by ``plan.plan``; this
module observes the cluster, confirms suspected differences with a dry-run, writes,
and reports each object in kubectl's words.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from specc.errors import ClusterError, ObjectError, SpeccError
from specc.objects import ClusterRender, DesiredObject, ObjectKey
from specc.sync.cluster import ApiError, Cluster
from specc.sync.inventory import PART_OF, ApplySetParent, group_kinds_of, with_membership
from specc.sync.plan import Plan, PlanEntry, PlanOptions, plan
from specc.sync.waves import wave_of

Outcome = Literal["created", "configured", "unchanged", "pruned", "skipped", "failed"]

#: Annotation that lets a sync delete and re-create an object whose immutable fields changed.
RECREATE_ANNOTATION = "specc.dev/recreate"

_VOLATILE = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")


@dataclass(frozen=True)
class SyncOptions:
    """What a sync may do; ``SyncOptions()`` is the agent's and CLI's default."""

    force: bool = True
    dry_run: bool = False
    plan: PlanOptions = field(default_factory=PlanOptions)
    concurrency: int = 8
    crd_timeout: float = 60.0
    commit: str = ""
    #: Asked between objects; True stops the sync after the object in hand (SIGTERM).
    cancel: Callable[[], bool] | None = None

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
            and all(r.outcome != "failed" for r in self.results)
        )

    @property
    def writes(self) -> int:
        return sum(1 for r in self.results if r.outcome in ("created", "configured", "pruned"))

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(
            ("created", "configured", "unchanged", "pruned", "skipped", "failed"), 0
        )
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
            "interrupted": self.interrupted,
            "drift": [e.to_dict() for e in self.plan.drifted],
            "results": [r.to_dict() for r in self.results],
        }


def observe(
    cluster: Cluster, parent: ApplySetParent, desired: Iterable[DesiredObject]
) -> tuple[dict[ObjectKey, dict[str, Any]], dict[str, Any] | None]:
    """Return the live members of ``parent``'s ApplySet and the live parent itself.

    One LIST per group-kind (those the commit declares plus those the parent says it
    had), filtered by the part-of label: a no-op sync costs exactly these requests.
    """
    live_parent = cluster.get("v1", "ConfigMap", parent.namespace, parent.name)
    versions: dict[str, str] = {}
    for obj in desired:
        versions.setdefault(obj.key.group_kind, obj.api_version)
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
    return members, live_parent


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
    """Return the confirmed plan of syncing ``render`` onto ``cluster``."""
    options = options or SyncOptions()
    parent = ApplySetParent.for_cluster(render.cluster)
    desired = with_membership(render.objects, parent)
    live, live_parent = observe(cluster, parent, desired)
    result = plan(render.cluster, desired, live, options.plan)
    confirm(cluster, result, options.concurrency)
    return result, parent, live_parent


def sync(cluster: Cluster, render: ClusterRender, options: SyncOptions | None = None) -> SyncResult:
    """Make ``cluster`` hold what ``render`` declares; return what happened to each object."""
    options = options or SyncOptions()
    the_plan, parent, live_parent = plan_cluster(cluster, render, options)
    out = SyncResult(render.cluster, the_plan, dry_run=options.dry_run)
    if the_plan.refusals:
        out.refused = list(the_plan.refusals)
        out.results = [ObjectResult(e.key, "skipped", e.reason) for e in the_plan.by_action("skip")]
        return out
    if options.dry_run:
        out.results = [_planned(e) for e in the_plan.entries]
        return out

    previous = group_kinds_of(live_parent)
    writes = the_plan.by_action("create", "configure")
    # KEP-3659: the parent lists every group-kind before members of a new kind exist,
    # so that an interrupted sync still finds them to prune next time.
    members = [e.key for e in the_plan.entries if e.action != "prune"]
    if writes or live_parent is None:
        _ensure_parent(cluster, parent, members, previous, _status(live_parent, options, "syncing"))

    by_wave: dict[int, list[PlanEntry]] = {}
    for e in writes:
        by_wave.setdefault(wave_of(e.key), []).append(e)
    failed = False
    for wave in sorted(by_wave):
        results = _run(
            lambda e: _apply_one(cluster, e, options), by_wave[wave], options.concurrency
        )
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

    prunes = the_plan.by_action("prune")
    failed = failed or out.interrupted
    if failed:
        # Prune only after a successful apply: a half-applied commit must not delete.
        out.results += [
            ObjectResult(e.key, "skipped", "apply failed; prune postponed") for e in prunes
        ]
    else:
        for e in prunes:
            out.results.append(_prune_one(cluster, e, parent))
    final = "applied" if out.ok else "failed"
    if writes or prunes or live_parent is None or _parent_stale(live_parent, options):
        kept = [e.key for e in the_plan.entries if e.action in ("create", "configure", "unchanged")]
        # Members kept back from prune (protected kinds) stay in the inventory: were their
        # group-kind dropped from the parent, no later sync would see them again.
        kept += [e.key for e in the_plan.by_action("skip") if _is_member(e.live, parent)]
        if failed:
            kept += [e.key for e in prunes]
        status = _status(live_parent, options, final, len(kept))
        # What the last sync did, in kubectl's words: `specc status` shows it.
        status["lastCounts"] = ",".join(f"{k}={n}" for k, n in out.counts().items() if n)
        if not out.ok:
            failures = [f"{r.key}: {r.message}" for r in out.results if r.outcome == "failed"]
            status["lastError"] = ("; ".join(failures) or "interrupted")[:4000]
        _ensure_parent(cluster, parent, kept, set(), status)
    return out


def read_status(cluster: Cluster, parent: ApplySetParent) -> dict[str, str]:
    """Return the status the parent records (last applied commit, result, error...)."""
    live = cluster.get("v1", "ConfigMap", parent.namespace, parent.name)
    return dict((live or {}).get("data") or {})


def record_status(cluster: Cluster, parent: ApplySetParent, updates: dict[str, str | None]) -> None:
    """Merge ``updates`` into the parent's status (None removes a key), keeping its inventory."""
    live = cluster.get("v1", "ConfigMap", parent.namespace, parent.name)
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
        "unchanged": "unchanged",
        "prune": "pruned",
        "skip": "skipped",
    }
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


def _parent_stale(live_parent: dict[str, Any], options: SyncOptions) -> bool:
    data = live_parent.get("data") or {}
    return bool(options.commit) and data.get("lastAppliedCommit") != options.commit


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


def _conflicts(exc: ApiError) -> list[tuple[str, str]]:
    taken = []
    for cause in exc.causes:
        if cause.get("reason") == "FieldManagerConflict":
            message = str(cause.get("message", ""))
            manager = message.split('"')[1] if '"' in message else message
            taken.append((str(cause.get("field", "")), manager))
    return taken


def _apply_one(cluster: Cluster, entry: PlanEntry, options: SyncOptions) -> ObjectResult:
    assert entry.desired is not None
    if options.cancelled():
        return ObjectResult(entry.key, "skipped", "interrupted before it was applied")
    body = entry.desired.body
    taken: list[tuple[str, str]] = []
    verb: Outcome = "created" if entry.action == "create" else "configured"
    try:
        try:
            cluster.apply(body, force=False)
        except ApiError as exc:
            if exc.status != 409 or exc.reason != "Conflict":
                raise
            taken = _conflicts(exc)
            if not options.force:
                fields = ", ".join(f"{f} (owned by {m})" for f, m in taken)
                return ObjectResult(
                    entry.key, "failed", f"conflicts: {fields}; sync with force to take them", taken
                )
            cluster.apply(body, force=True)
    except ApiError as exc:
        if exc.status == 422 and "immutable" in str(exc):
            return _recreate(cluster, entry, exc)
        return ObjectResult(entry.key, "failed", str(exc))
    except (ObjectError, ClusterError) as exc:
        return ObjectResult(entry.key, "failed", str(exc))
    return ObjectResult(entry.key, verb, "", taken)


def _recreate(cluster: Cluster, entry: PlanEntry, exc: ApiError) -> ObjectResult:
    assert entry.desired is not None
    fields = ", ".join(str(c.get("field", "")) for c in exc.causes) or "an immutable field"
    notes = entry.desired.body["metadata"].get("annotations") or {}
    if notes.get(RECREATE_ANNOTATION) != "allow":
        return ObjectResult(
            entry.key,
            "failed",
            f"{fields} cannot change in place; set the annotation {RECREATE_ANNOTATION}: allow "
            "to let specc delete and re-create it",
        )
    try:
        cluster.delete(entry.key, entry.desired.api_version)
        deadline = time.monotonic() + 60
        d = entry.desired
        while cluster.get(d.api_version, d.kind, d.namespace, d.name) is not None:
            if time.monotonic() > deadline:
                return ObjectResult(
                    entry.key, "failed", "deleted for re-creation but still present after 60s"
                )
            time.sleep(0.2)
        cluster.apply(d.body, force=True)
    except SpeccError as err:
        return ObjectResult(entry.key, "failed", f"re-creation failed: {err}")
    return ObjectResult(entry.key, "configured", f"re-created: {fields} changed")


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


def _is_member(live: dict[str, Any] | None, parent: ApplySetParent) -> bool:
    labels = ((live or {}).get("metadata") or {}).get("labels") or {}
    return bool(labels.get(PART_OF) == parent.id)


def _prune_one(cluster: Cluster, entry: PlanEntry, parent: ApplySetParent) -> ObjectResult:
    live = entry.live or {}
    if not _is_member(live, parent):  # never delete what is not ours
        return ObjectResult(entry.key, "skipped", "not a member of this ApplySet")
    try:
        cluster.delete(entry.key, str(live.get("apiVersion", "")))
    except SpeccError as exc:
        return ObjectResult(entry.key, "failed", f"prune failed: {exc}")
    return ObjectResult(entry.key, "pruned")

"""Watch-driven healing: the agent's inventory watched, drift of one object healed alone.

After each full sync the agent arms the healer with what it applied. Watches of every
group-kind of the inventory (``specc.sync.watch``) report each change; an event counts
as drift when the object now differs from the applied one in a field specc sets (the
same comparison a plan makes) or when a member is gone. Drift is debounced (a burst of
events on one object is one heal), then healed by a targeted plan and apply of that
object (``specc.sync.apply.heal``) in the agent's loop, never beside a full sync.

A change to a field specc does not set is not drift, and costs no request. Nor is a
difference the server already said changes nothing (a default the comparison cannot
know): the dry-run's verdict is remembered until the object changes otherwise.
Rate limits: an object healed again and again (another controller fighting specc) backs
off exponentially; drift of many objects at once is left to one full sync, which costs
a LIST per kind instead of a GET and an apply per object.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from specc.objects import ClusterRender, DesiredObject, ObjectKey
from specc.sync.apply import Heal, SyncOptions, heal
from specc.sync.cluster import Cluster, Resource
from specc.sync.inventory import PART_OF, ApplySetParent, with_membership
from specc.sync.plan import DELETED_REASON, Observed, compare
from specc.sync.watch import InventoryWatch, WatchOptions
from specc.sync.waves import wave_of


@dataclass(frozen=True)
class HealOptions:
    #: Quiet time after an object's last event before it is healed (a burst is one heal)...
    debounce: float = 0.1
    #: ...but no longer than this after its first event.
    max_delay: float = 0.2
    #: More drifted objects than this at once are healed by one full sync.
    batch: int = 50
    #: An object healed this many times within ``window`` seconds backs off, doubling
    #: from ``backoff`` up to ``max_backoff`` seconds.
    burst: int = 3
    window: float = 60.0
    backoff: float = 1.0
    max_backoff: float = 300.0
    watch: WatchOptions = field(default_factory=WatchOptions)


Why = Literal["changed", "deleted"]


@dataclass
class Drift:
    """One object seen drifting, waiting for its heal."""

    key: ObjectKey
    why: Why
    #: The fields that differ (for the log), empty for a deletion.
    fields: list[str]
    #: Monotonic times of the first and the last event, and the earliest heal.
    seen: float
    last: float
    not_before: float = 0.0
    #: Heals of this drift that failed (its namespace gone too, a webhook down...).
    failures: int = 0

    def describe(self) -> str:
        return DELETED_REASON if self.why == "deleted" else "changed: " + ", ".join(self.fields)


def _signature(changes: list[Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((c.path, repr(c.live)) for c in changes))


class Healer:
    """What the agent applied, watched; drift queued for the loop to heal."""

    def __init__(
        self,
        cluster: Cluster,
        parent: ApplySetParent,
        wake: Callable[[], None],
        options: HealOptions | None = None,
        on_drift: Callable[[Drift], None] = lambda _: None,
        on_restart: Callable[[str, str], None] = lambda _gk, _why: None,
    ) -> None:
        self.cluster = cluster
        self.parent = parent
        self.options = options or HealOptions()
        self._wake = wake
        self._on_drift = on_drift
        self._lock = threading.Lock()
        #: The applied objects by key (membership label included); swapped whole.
        self._desired: dict[ObjectKey, DesiredObject] = {}
        self._adopt: tuple[str, ...] = ()
        self._pending: dict[ObjectKey, Drift] = {}
        #: While a full sync runs (``hold``): the last event of each object, judged against
        #: the commit that sync applies once it has succeeded (``arm``), not the one before.
        self._held: dict[ObjectKey, tuple[str, dict[str, Any]]] | None = None
        #: Differences the server's dry-run found to change nothing, per object.
        self._noop: dict[ObjectKey, tuple[tuple[str, str], ...]] = {}
        #: Heals per object: (count within the window, monotonic time of the last).
        self._history: dict[ObjectKey, tuple[int, float]] = {}
        self.watch = InventoryWatch(
            cluster,
            f"{PART_OF}={parent.id}",
            self._on_event,
            self._on_list,
            on_restart,
            self.options.watch,
        )

    # -- arming -------------------------------------------------------------------------

    def hold(self) -> None:
        """A full sync starts: its own writes are not drift. Events wait for ``arm``.

        Should the sync fail, they wait for the next one that succeeds: healing a half
        applied commit back to the previous one would fight the retry of the new one.
        """
        with self._lock:
            if self._held is None:
                self._held = {}
            self._pending.clear()

    def arm(self, render: ClusterRender, since: float) -> None:
        """Watch what ``render`` applied; forget drift seen before ``since`` (the sync saw it).

        Events held during the sync are judged now, against what it applied.
        """
        desired = {o.key: o for o in with_membership(render.objects, self.parent)}
        resources: dict[str, Resource] = {}
        for obj in desired.values():
            if obj.key.group_kind in resources:
                continue
            res = self.cluster.resource(obj.api_version, obj.kind)
            if res is not None:
                resources[obj.key.group_kind] = res
        with self._lock:
            self._desired = desired
            self._adopt = tuple(render.adopt)
            self._pending = {
                k: d for k, d in self._pending.items() if d.last >= since and k in desired
            }
            self._noop = {k: v for k, v in self._noop.items() if k in desired}
            held, self._held = self._held or {}, None
        for kind, seen in held.values():
            self._on_event(kind, seen)
        self.watch.ensure(resources)

    def disarm(self) -> None:
        """End the watches and forget the queue (stopping, or no longer the leader)."""
        self.watch.close()
        with self._lock:
            self._desired = {}
            self._pending.clear()
            self._held = None

    # -- events (watch threads) -----------------------------------------------------------

    def _on_event(self, kind: str, obj: dict[str, Any]) -> None:
        key = ObjectKey.of(obj)
        with self._lock:
            if self._held is not None:
                self._held[key] = (kind, obj)
                return
        desired = self._desired.get(key)
        if desired is None:
            return  # not ours, or pruned by the last sync
        if kind == "DELETED":
            self._queue(key, "deleted", [])
            return
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            return  # being deleted: its DELETED event follows
        changes = compare(desired, obj)
        if not changes:
            return
        signature = _signature(changes)
        with self._lock:
            if self._noop.get(key) == signature:
                return
        self._queue(key, "changed", [c.path for c in changes])

    def _on_list(self, group_kind: str, items: list[dict[str, Any]]) -> None:
        """Compare a (re)list with what was applied: events missed while not watching."""
        with self._lock:
            if self._held is not None:
                # A relist during a sync: held like events, and deletions as DELETED.
                listed = {ObjectKey.of(i): i for i in items}
                for key, item in listed.items():
                    self._held[key] = ("MODIFIED", item)
                for key, desired in self._desired.items():
                    if key.group_kind == group_kind and key not in listed:
                        self._held[key] = ("DELETED", desired.body)
                return
        seen = set()
        for item in items:
            seen.add(ObjectKey.of(item))
            self._on_event("MODIFIED", item)
        for key in [k for k in self._desired if k.group_kind == group_kind and k not in seen]:
            self._queue(key, "deleted", [])

    def _queue(self, key: ObjectKey, why: Why, fields: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            current = self._pending.get(key)
            if current is None:
                drift = Drift(key, why, fields, now, now)
                self._pending[key] = drift
            else:
                current.last = now
                current.why = why
                current.fields = fields
                drift = current
        if current is None:
            self._on_drift(drift)
        self._wake()

    # -- healing (the agent's loop) -------------------------------------------------------

    def next_due(self) -> float | None:
        """Return when the next heal is due (monotonic), or None if nothing drifted."""
        with self._lock:
            if not self._pending:
                return None
            return min(self._due(d) for d in self._pending.values())

    def _due(self, drift: Drift) -> float:
        o = self.options
        settled = min(drift.last + o.debounce, drift.seen + o.max_delay)
        return max(settled, drift.not_before)

    def take(self, now: float) -> list[Drift] | None:
        """Return the drifts due by ``now`` (taken off the queue); None if too many for heals.

        A drift of an object healed too often stays queued until its backoff ends.
        """
        o = self.options
        with self._lock:
            due = [d for d in self._pending.values() if self._due(d) <= now]
            if len(due) > o.batch:
                for d in due:
                    del self._pending[d.key]
                return None
            out = []
            for d in due:
                count, last = self._history.get(d.key, (0, 0.0))
                if now - last > o.window:
                    count = 0
                if count >= o.burst:
                    wait = min(o.backoff * 2 ** (count - o.burst), o.max_backoff)
                    if now < last + wait:
                        d.not_before = last + wait
                        continue
                del self._pending[d.key]
                out.append(d)
            # Namespaces before what lives in them, as a sync's waves go.
            return sorted(out, key=lambda d: (wave_of(d.key), d.key))

    def heal(self, drift: Drift, options: SyncOptions) -> Heal | None:
        """Plan and apply ``drift``'s object alone; None if it is no longer applied."""
        desired = self._desired.get(drift.key)
        if desired is None:
            return None
        result = heal(self.cluster, desired, self.parent.id, Observed(), options, self._adopt)
        now = time.monotonic()
        with self._lock:
            if result.result is not None and result.result.outcome == "failed":
                # No event may come to retry it: queue it again, backing off.
                drift.failures += 1
                wait = min(
                    self.options.backoff * 2 ** (drift.failures - 1), self.options.max_backoff
                )
                drift.not_before = now + wait
                self._pending.setdefault(drift.key, drift)
            elif result.wrote:
                count, last = self._history.get(drift.key, (0, 0.0))
                count = 0 if now - last > self.options.window else count
                self._history[drift.key] = (count + 1, now)
            elif result.entry.action == "unchanged" and result.entry.live is not None:
                # The server says applying changes nothing: the comparison's suspicion is a
                # default it cannot know. Do not heal this same difference again.
                changes = compare(desired, result.entry.live)
                if changes:
                    self._noop[drift.key] = _signature(changes)
        return result

    def forget(self) -> None:
        """Drop the queue (a full sync is about to see everything anyway)."""
        with self._lock:
            self._pending.clear()

"""Prometheus metrics of the agent, in a registry of its own (so tests can read them).

Besides counters of what happened, the agent keeps one small state (:class:`SyncState`)
from which it publishes whether the cluster is where the branch says it should be:
``specc_sync_ready`` and ``specc_sync_stalled{reason}``. A resync of an older commit
that succeeds does not make a refused head look healthy. docs/metrics.md lists every
series and compares the set with Flux's and Argo CD's.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

# The client adds a `_created` sample (a Unix time) to every counter and histogram;
# dashboards summing a metric's series read those as counts.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Why the cluster is not at the branch's head (the ``reason`` of specc_sync_stalled).
STALL_REASONS = (
    "invalid",  # the head does not load, validate, compile or check
    "cluster-unknown",  # the head's fleet.yaml has no cluster of this agent's name
    "rewind",  # the head does not descend from the applied commit
    "signature",  # the head has no signature the keyring trusts
    "internal",  # specc failed on the head (a bug): the commit is refused
    "sync-failed",  # the head's sync did not converge (failed or refused objects)
    "fetch-failed",  # the branch cannot be fetched: the head is not known
    "unreachable",  # the API server does not answer
)

#: specc's verbs for API requests (probe: /readyz asking GET /version itself).
API_VERBS = ("discovery", "get", "list", "watch", "apply", "create", "update", "delete", "probe")

_API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class SyncState:
    """What the agent knows about one cluster's progress towards the branch head."""

    head: str = ""
    #: Monotonic time the current head was first fetched.
    head_seen: float = 0.0
    applied: str = ""
    attempted: str = ""
    #: The commit refused or failing, and why (a STALL_REASONS value).
    blocked: dict[str, str] = field(default_factory=dict)
    fetch_failing: bool = False
    unreachable: bool = False
    #: Objects drifted at the last plan of the applied commit (not healed yet).
    drifted: int = 0

    def stall(self) -> str | None:
        """Return why the cluster is not at the head, or None if nothing stands in the way."""
        if self.unreachable:
            return "unreachable"
        if self.fetch_failing:
            return "fetch-failed"
        # A resync of the applied commit that fails blocks it too (head == applied).
        return self.blocked.get(self.head) if self.head else None

    def ready(self) -> bool:
        """The head is applied, the cluster holds it (no drift) and nothing is failing."""
        return (
            bool(self.head)
            and self.head == self.applied
            and not self.drifted
            and (self.stall() is None)
        )


@dataclass
class AgentMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self._lock = threading.Lock()
        self.states: dict[str, SyncState] = {}
        self.sync_duration = Histogram(
            "specc_sync_duration_seconds",
            "Time one sync (plan, apply, prune) took, whatever its result.",
            ["cluster"],
            registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.sync_attempts = Counter(
            "specc_sync_attempts_total",
            "Syncs started, by result: succeeded (converged), failed (objects failed), "
            "refused (a guard refused the whole sync), interrupted (stop or lost lease).",
            ["cluster", "result"],
            registry=r,
        )
        self.objects = Counter(
            "specc_objects_total",
            "Objects by sync result: created, configured, pruned, skipped, refused, failed "
            "(unchanged objects are not counted).",
            ["cluster", "result"],
            registry=r,
        )
        self.drifted = Gauge(
            "specc_objects_drifted",
            "Objects with fields another manager changed away from the applied commit, "
            "or deleted out of band, at the last full plan.",
            ["cluster"],
            registry=r,
        )
        self.last_success = Gauge(
            "specc_last_successful_sync_timestamp_seconds",
            "Unix time of the last sync that converged, of whichever commit; a resync of "
            "an older commit counts too (see specc_sync_ready for the head).",
            ["cluster"],
            registry=r,
        )
        self.revision = Info(
            "specc_applied_revision",
            "The commit the cluster was last synced to successfully.",
            ["cluster"],
            registry=r,
        )
        self.attempted = Info(
            "specc_attempted_revision",
            "The newest commit the agent tried to apply (refused or not); resyncs of the "
            "applied commit do not change it.",
            ["cluster"],
            registry=r,
        )
        self.head_revision = Info(
            "specc_head_revision",
            "The newest commit of the branch the agent has fetched.",
            ["cluster"],
            registry=r,
        )
        self.ready = Gauge(
            "specc_sync_ready",
            "1 while the branch head is applied, the cluster holds it (no drift) and "
            "nothing fails; else 0.",
            ["cluster"],
            registry=r,
        )
        self.stalled = Gauge(
            "specc_sync_stalled",
            "1 (one series) while something keeps the cluster from the branch head, by "
            "reason: " + ", ".join(STALL_REASONS) + ".",
            ["cluster", "reason"],
            registry=r,
        )
        self.head_pending = Gauge(
            "specc_head_unapplied_seconds",
            "Seconds since the branch head was first fetched, while it is not applied; "
            "0 once it is.",
            ["cluster"],
            registry=r,
        )
        self.errors = Counter(
            "specc_errors_total",
            "Failures by kind: fetch (git), invalid, cluster-unknown, rewind, signature, "
            "internal (a commit refused for that reason; internal also counts a step that "
            "raised unexpectedly: a bug in specc), sync (a sync that did not converge).",
            ["cluster", "kind"],
            registry=r,
        )
        self.fetch_duration = Histogram(
            "specc_git_fetch_duration_seconds",
            "Time one git fetch of the branch took, failed ones included.",
            ["cluster"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.fetch_failures = Counter(
            "specc_git_fetch_failures_total",
            "Git fetches of the branch that failed.",
            ["cluster"],
            registry=r,
        )
        self.api_requests = Counter(
            "specc_api_requests_total",
            "Requests to the API server, each attempt counted, by specc's verb ("
            + ", ".join(API_VERBS)
            + ') and HTTP code; code is "error" when no answer came (refused, reset, timed '
            "out).",
            ["cluster", "verb", "code"],
            registry=r,
        )
        self.api_duration = Histogram(
            "specc_api_request_duration_seconds",
            "Time one API request attempt took until its answer (a watch: until its "
            "first byte), by specc's verb (" + ", ".join(API_VERBS) + ").",
            ["cluster", "verb"],
            registry=r,
            buckets=_API_BUCKETS,
        )
        self.leader = Gauge(
            "specc_leader", "1 while this replica holds the lease.", ["cluster"], registry=r
        )
        self.heal_duration = Histogram(
            "specc_heal_duration_seconds",
            "Time from a watch event showing drift to the object healed.",
            ["cluster"],
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
        )
        self.drift_events = Counter(
            "specc_drift_events_total",
            "Watch events that showed drift, by kind: changed (a field specc owns) or deleted.",
            ["cluster", "kind"],
            registry=r,
        )
        self.watch_restarts = Counter(
            "specc_watch_restarts_total",
            "Watches opened again, by reason: gone (410, relisted), error, closed.",
            ["cluster", "reason"],
            registry=r,
        )
        self.hook_requests = Counter(
            "specc_webhook_requests_total",
            "POST /hook requests by HTTP code of the answer (202 scheduled a fetch).",
            ["code"],
            registry=r,
        )

    # -- state ---------------------------------------------------------------------------

    def state(self, cluster: str) -> SyncState:
        with self._lock:
            if cluster not in self.states:
                self.states[cluster] = SyncState()
                self.head_pending.labels(cluster).set_function(lambda: self._pending(cluster))
                self.ready.labels(cluster).set(0)  # a standby says "not at the head" too
            return self.states[cluster]

    def _pending(self, cluster: str) -> float:
        s = self.states[cluster]
        if not s.head or s.head == s.applied:
            return 0.0
        return time.monotonic() - s.head_seen

    def _publish(self, cluster: str) -> None:
        s = self.state(cluster)
        with self._lock:
            self.ready.labels(cluster).set(1 if s.ready() else 0)
            reason = s.stall()
            for other in STALL_REASONS:
                if other != reason:
                    with contextlib.suppress(KeyError):
                        self.stalled.remove(cluster, other)
            if reason:
                self.stalled.labels(cluster, reason).set(1)

    # -- what the agent reports ----------------------------------------------------------

    def fetched(self, cluster: str, head: str, seconds: float) -> None:
        """A fetch of the branch returned ``head``."""
        self.fetch_duration.labels(cluster).observe(seconds)
        s = self.state(cluster)
        if head != s.head:
            s.head, s.head_seen = head, time.monotonic()
            self.head_revision.labels(cluster).info({"revision": head})
        s.fetch_failing = False
        self._publish(cluster)

    def fetch_failed(self, cluster: str, seconds: float) -> None:
        self.fetch_duration.labels(cluster).observe(seconds)
        self.fetch_failures.labels(cluster).inc()
        self.errors.labels(cluster, "fetch").inc()
        self.state(cluster).fetch_failing = True
        self._publish(cluster)

    def refused(self, cluster: str, commit: str, reason: str) -> None:
        """``commit`` is refused before any sync (invalid, rewind, signature...)."""
        self.errors.labels(cluster, reason).inc()
        self._attempt(cluster, commit)
        self._block(cluster, commit, reason)
        self._publish(cluster)

    def _block(self, cluster: str, commit: str, reason: str) -> None:
        blocked = self.state(cluster).blocked
        blocked.pop(commit, None)
        blocked[commit] = reason
        while len(blocked) > 64:  # weeks of refused commits: only recent ones can be the head
            del blocked[next(iter(blocked))]

    def synced(
        self, cluster: str, commit: str, result: str, seconds: float, drifted: int = 0
    ) -> None:
        """A sync of ``commit`` ended with ``result`` (succeeded, failed, refused, interrupted)."""
        self.sync_attempts.labels(cluster, result).inc()
        self.sync_duration.labels(cluster).observe(seconds)
        s = self.state(cluster)
        if commit != s.applied or not s.attempted:
            self._attempt(cluster, commit)
        if result == "succeeded":
            s.applied = commit
            s.blocked.pop(commit, None)
            s.drifted = 0
            self.last_success.labels(cluster).set(time.time())
            self.revision.labels(cluster).info({"revision": commit})
        elif result != "interrupted":
            self.errors.labels(cluster, "sync").inc()
            self._block(cluster, commit, "sync-failed")
            s.drifted = drifted
        self.drifted.labels(cluster).set(drifted)
        self._publish(cluster)

    def _attempt(self, cluster: str, commit: str) -> None:
        self.state(cluster).attempted = commit
        self.attempted.labels(cluster).info({"revision": commit})

    def planned(self, cluster: str, commit: str, drifted: int) -> None:
        """A plan of the applied ``commit`` (no apply) found ``drifted`` objects."""
        s = self.state(cluster)
        s.applied = s.applied or commit
        s.drifted = drifted
        self.drifted.labels(cluster).set(drifted)
        self._publish(cluster)

    def applied_at_start(self, cluster: str, commit: str) -> None:
        """The cluster's parent records ``commit`` as applied (read at start)."""
        if commit:
            s = self.state(cluster)
            s.applied = s.applied or commit
            self._publish(cluster)

    def api_answer(self, cluster: str, verb: str, code: str, seconds: float) -> None:
        """One API request attempt ended with ``code`` (an HTTP status, or "error")."""
        self.api_requests.labels(cluster, verb, code).inc()
        self.api_duration.labels(cluster, verb).observe(seconds)
        s = self.state(cluster)
        down = code == "error"
        if down != s.unreachable:
            s.unreachable = down
            self._publish(cluster)

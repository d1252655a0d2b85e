"""The sync agent: keep one cluster equal to the newest good commit of one branch.

Observe, compare, act, repeat. This module wires stages together (git source, the
pipeline, the sync engine, leader election, metrics); it decides only *when* to act.
"""

from __future__ import annotations

import logging
import random
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from specc.agentserver import AgentServer
from specc.errors import FleetError, GitError, SpeccError
from specc.healer import Drift, Healer, HealOptions
from specc.leader import LeaderElector, LeaseOptions
from specc.logs import log
from specc.metrics import AgentMetrics
from specc.objects import ClusterRender
from specc.source import GitSource, GitSourceOptions
from specc.sync.apply import SyncOptions, SyncResult, plan_cluster, read_status, record_status, sync
from specc.sync.cluster import Cluster
from specc.sync.inventory import ApplySetParent


@dataclass(frozen=True)
class AgentOptions:
    source: GitSourceOptions
    cluster: str
    #: The fleet's folder inside the repository.
    fleet_path: str = "fleet"
    interval: float = 60.0
    jitter: float = 0.2
    #: Seconds between full resyncs: the backstop of the watches, which heal within seconds.
    resync: float = 600.0
    self_heal: bool = True
    #: Watch the inventory and heal a drifted object alone (with self_heal).
    watch: bool = True
    heal: HealOptions = field(default_factory=HealOptions)
    allow_rewind: bool = False
    verify_signatures: bool = False
    webhook_secret: bytes | None = None
    listen: tuple[str, int] | None = ("0.0.0.0", 8080)
    leader_election: bool = True
    lease_duration: float = 15.0
    identity: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{random.getrandbits(32):08x}"
    )
    max_backoff: float = 300.0
    sync: SyncOptions = field(default_factory=SyncOptions)


class Agent:
    """One agent replica for one cluster."""

    def __init__(
        self,
        options: AgentOptions,
        cluster: Cluster,
        metrics: AgentMetrics | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.options = options
        self.cluster = cluster
        self.metrics = metrics or AgentMetrics()
        self.logger = logger or logging.getLogger("specc.agent")
        self.source = GitSource(options.source)
        self.parent = ApplySetParent.for_cluster(
            options.cluster, namespace=options.sync.parent_namespace
        )
        #: What the loop waits on: a new commit announced (/hook), drift seen by a watch,
        #: a leadership change, or stop. Every wait of the loop ends when it is set.
        self.trigger = _Wake()
        self.stop: threading.Event = _Stop(self.trigger)
        cluster.stop_on(self.stop)
        self.ready = threading.Event()
        self.leading = threading.Event()
        self.last_applied = ""
        self.last_render: ClusterRender | None = None
        #: Commits already refused (rewind, signature, invalid): reported once, not retried.
        self.refused: dict[str, str] = {}
        self.next_resync = 0.0
        #: When the next fetch is due (monotonic); a set trigger asks for one now.
        self.next_fetch = 0.0
        self.healer = Healer(
            cluster,
            self.parent,
            self.trigger.nudge,
            options.heal,
            on_drift=self._drift_seen,
            on_restart=self._watch_restarted,
        )
        #: Set while run() loops; the loop's last sign of life (monotonic seconds).
        self._running = False
        self._beat = 0.0
        #: While the loop waits between steps: the monotonic time the wait ends at the latest.
        self._waiting_until = 0.0
        self._server = AgentServer(self)
        name = options.cluster
        cluster.stats.observers.append(
            lambda verb, code, seconds: self.metrics.api_answer(name, verb, code, seconds)
        )
        self._elector = LeaderElector(
            cluster,
            LeaseOptions(
                f"specc-agent-{options.cluster}",
                identity=options.identity,
                duration=options.lease_duration,
            ),
        )

    # -- one reconcile step ------------------------------------------------------------

    def _log(self, level: int, msg: str, **fields: Any) -> None:
        log(self.logger, level, msg, cluster=self.options.cluster, **fields)

    def _sync_options(self, commit: str) -> SyncOptions:
        # Once the agent knows the applied commit (it checks lineage against it itself), a
        # parent deleted meanwhile hides no history; at a start without it, the sync's
        # guard refuses members whose parent lost its record, unless --allow-rewind.
        return replace(
            self.options.sync,
            commit=commit,
            cancel=self._cancelled,
            allow_rewind=self.options.allow_rewind or self.options.sync.allow_rewind,
            history_known=bool(self.last_applied),
        )

    def _cancelled(self) -> bool:
        return self.stop.is_set() or (self.options.leader_election and not self.leading.is_set())

    def _render(self, commit: str) -> ClusterRender:
        """Return this cluster's checked render of ``commit``; raise CommitRefused if it has none.

        Whatever a commit holds (symlinks anywhere, a fleet.yaml without this cluster, a
        spec that trips a bug in a stage) ends here as a refusal with a reason, never as
        an exception that stops the agent.
        """
        from specc.pipeline import compile_checked, validate_path

        where = self.source.dir.parent
        where.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(prefix="specc-commit-", dir=where) as tmp:
                try:
                    root = self.source.extract(commit, Path(tmp) / "tree", self.options.fleet_path)
                except GitError as exc:
                    raise CommitRefused("invalid", str(exc)) from None
                try:
                    valid = validate_path(root)
                    if self.options.cluster not in {c.name for c in valid.clusters}:
                        known = ", ".join(c.name for c in valid.clusters) or "none"
                        raise CommitRefused(
                            "cluster-unknown",
                            f"{self.options.fleet_path}/fleet.yaml: commit {commit[:12]} has no "
                            f"cluster {self.options.cluster!r} (clusters: {known})",
                        )
                    # Every cluster's render, as `specc validate` checks it: a commit is
                    # judged whole, so an error in another cluster's render refuses it
                    # here too (one verdict for the pull request's gate and all agents).
                    renders = compile_checked(valid)
                    (render,) = [r for r in renders if r.cluster == self.options.cluster]
                except FleetError as exc:
                    raise CommitRefused("invalid", str(exc)) from None
        except CommitRefused:
            raise
        except Exception as exc:  # a bug in a stage must not stop the agent: refuse the commit
            self.logger.exception("rendering a commit failed unexpectedly")
            raise CommitRefused(
                "internal", f"commit {commit[:12]}: specc failed to render it: {exc!r}"
            ) from None
        return render

    def _refuse(self, commit: str, kind: str, message: str) -> str:
        if self.refused.get(commit) != message:
            self.refused[commit] = message
            self.metrics.refused(self.options.cluster, commit, kind)
            self._log(logging.ERROR, "commit refused", commit=commit, reason=kind, error=message)
            record_status(
                self.cluster,
                self.parent,
                {"lastAttemptedCommit": commit, "lastResult": kind, "lastError": message[:4000]},
            )
        return kind

    def _record(self, result: SyncResult, commit: str, seconds: float) -> None:
        c = self.options.cluster
        for outcome, n in result.counts().items():
            if n and outcome != "unchanged":
                self.metrics.objects.labels(c, outcome).inc(n)
        ended = "succeeded" if result.ok else "failed"
        if result.interrupted:
            ended = "interrupted"
        elif result.refused:
            ended = "refused"
        self.metrics.synced(c, commit, ended, seconds, len(result.plan.drifted))
        self._log(
            logging.INFO if result.ok else logging.ERROR,
            "sync finished",
            commit=commit,
            ok=result.ok,
            counts=result.counts(),
            drift=[str(e.key) for e in result.plan.drifted],
            refused=result.refused,
            seconds=round(seconds, 3),
        )

    def step(self) -> str:
        """Fetch, and apply a new good commit or heal drift; return what happened."""
        if not self.last_applied:
            self.last_applied = read_status(self.cluster, self.parent).get("lastAppliedCommit", "")
            self.metrics.applied_at_start(self.options.cluster, self.last_applied)
        fetching = time.monotonic()
        try:
            head = self.source.fetch()
        except SpeccError:
            self.metrics.fetch_failed(self.options.cluster, time.monotonic() - fetching)
            raise
        self.metrics.fetched(self.options.cluster, head, time.monotonic() - fetching)
        last = self.last_applied
        if head != last and head not in self.refused:
            if last and not self.source.descends(last, head) and not self.options.allow_rewind:
                return self._refuse(
                    head,
                    "rewind",
                    f"commit {head[:12]} does not descend from the applied {last[:12]} (force-push?)",
                )
            if self.options.verify_signatures and not self.source.verified(head):
                return self._refuse(
                    head, "signature", f"commit {head[:12]} has no signature the keyring trusts"
                )
            try:
                render = self._render(head)
            except CommitRefused as exc:
                return self._refuse(head, exc.kind, exc.message)
            return self._apply(render, head, "applied")
        if time.monotonic() >= self.next_resync and last:
            if self.last_render is None:
                try:
                    self.last_render = self._render(last)
                except CommitRefused as exc:
                    # The applied commit no longer renders (a newer specc refuses it): keep
                    # the cluster as it is and say so; a new good commit ends this.
                    self.next_resync = time.monotonic() + self.options.resync
                    raise SyncFailed(
                        f"cannot re-render the applied commit: {exc.message}"
                    ) from None
            if self.options.self_heal:
                return self._apply(self.last_render, last, "healed")
            plan, _, _ = plan_cluster(self.cluster, self.last_render, self._sync_options(last))
            self.metrics.planned(self.options.cluster, last, len(plan.drifted))
            self.next_resync = time.monotonic() + self.options.resync
            return "drift" if not plan.in_sync else "unchanged"
        return "idle"

    def _apply(self, render: ClusterRender, commit: str, verb: str) -> str:
        started = time.monotonic()
        self.healer.hold()
        options = self._sync_options(commit)
        if self.last_render is not None:
            options = replace(options, previous=frozenset(o.key for o in self.last_render.objects))
        result = sync(self.cluster, render, options)
        self._record(result, commit, time.monotonic() - started)
        self.next_resync = time.monotonic() + self.options.resync
        if not result.ok:
            reason = "; ".join(result.refused) or "; ".join(
                f"{r.key}: {r.message}"
                for r in result.results
                if r.outcome in ("failed", "refused")
            )
            if result.interrupted:
                reason = reason or "interrupted"
            if result.refused:
                # A refused sync writes nothing, not even its status; the agent reports it.
                # Failed objects the sync records on the parent itself.
                record_status(
                    self.cluster,
                    self.parent,
                    {
                        "lastAttemptedCommit": commit,
                        "lastResult": "failed",
                        "lastError": reason[:4000],
                    },
                )
            raise SyncFailed(reason or "sync failed")
        self.last_applied = commit
        self.last_render = render
        # Watches belong to a running loop (which ends them); a bare step() starts none.
        if (
            self._running
            and self.options.watch
            and self.options.self_heal
            and not self._cancelled()
        ):
            self.healer.arm(render, started)
        self.ready.set()
        # A new commit is "applied" even when it changes nothing on this cluster.
        return verb if result.writes or verb == "applied" else "unchanged"

    # -- watch-driven healing ------------------------------------------------------------

    def _drift_seen(self, drift: Drift) -> None:
        self.metrics.drift_events.labels(self.options.cluster, drift.why).inc()
        self._log(logging.INFO, "drift seen", object=str(drift.key), drift=drift.describe())

    def _watch_restarted(self, group_kind: str, why: str) -> None:
        self.metrics.watch_restarts.labels(self.options.cluster, why).inc()
        if why != "closed":  # a watch the server ended after its timeout is routine
            self._log(logging.WARNING, "watch restarted", kind=group_kind, reason=why)

    def heal_drift(self) -> int:
        """Heal every drifted object that is due, each alone; return how many were written."""
        drifts = self.healer.take(time.monotonic())
        if drifts is None:
            # Too many at once (a namespace deleted?): one full sync is cheaper.
            self._log(logging.INFO, "drift of many objects: resyncing")
            self.next_resync = 0.0
            return 0
        if not drifts or not self.last_applied:
            return 0
        c = self.options.cluster
        writes = 0
        for drift in drifts:
            if self._cancelled():
                break
            result = self.healer.heal(drift, self._sync_options(self.last_applied))
            if result is None or result.result is None:
                continue
            outcome = result.result.outcome
            writes += result.wrote
            if result.wrote:
                self.metrics.heal_duration.labels(c).observe(time.monotonic() - drift.seen)
            self.metrics.objects.labels(c, outcome).inc()
            if outcome in ("failed", "refused"):
                self.metrics.errors.labels(c, "sync").inc()
            self._log(
                logging.INFO if result.wrote else logging.ERROR,
                "healed" if result.wrote else "heal failed",
                object=str(drift.key),
                drift=drift.describe(),
                result=outcome,
                message=result.result.message,
                seconds=round(time.monotonic() - drift.seen, 3),
            )
        return writes

    # -- the loop ------------------------------------------------------------------------

    def _renew_loop(self) -> None:
        period = max(self.options.lease_duration / 3, 0.2)
        while not self.stop.is_set():
            try:
                held = self._elector.try_acquire_or_renew()
            except SpeccError as exc:
                self._log(logging.WARNING, "lease renewal failed", error=str(exc))
                held = False
            if held and not self.leading.is_set():
                self._log(logging.INFO, "became leader", identity=self.options.identity)
                # A new leader resyncs at once: the cluster may have drifted while it stood
                # by, and that full sync arms its watches.
                self.next_resync = 0.0
                self.trigger.set()
            if not held and self.leading.is_set():
                self._log(logging.WARNING, "lost leadership", identity=self.options.identity)
            (self.leading.set if held else self.leading.clear)()
            self.metrics.leader.labels(self.options.cluster).set(1 if held else 0)
            self.stop.wait(period)

    def run(self) -> None:
        """Reconcile until ``stop`` is set; then release the lease."""
        self.serve()
        renewer = None
        if self.options.leader_election:
            renewer = threading.Thread(target=self._renew_loop, name="specc-lease", daemon=True)
            renewer.start()
        else:
            self.leading.set()
        failures = 0
        self._running = True
        try:
            while True:
                # Cleared before stop and the state are read: a stop or wake that comes
                # later ends the wait below at once. (Read first, a SIGTERM landing between
                # the read and the clear was forgotten: the agent slept out --interval.)
                self.trigger.clear()
                if self.stop.is_set():
                    break
                self._beat = time.monotonic()
                if not self.leading.is_set():
                    self.healer.disarm()
                    self.ready.set()  # a standby replica is ready to take over
                    self.stop.wait(0.2)
                    continue
                try:
                    if self.heal_drift():
                        failures = 0
                    now = time.monotonic()
                    resync_due = bool(self.last_applied) and now >= self.next_resync
                    if self.trigger.take_fetch() or now >= self.next_fetch or resync_due:
                        outcome = self.step()
                        failures = 0
                        self.next_fetch = time.monotonic() + self.options.interval * (
                            1 + random.uniform(-self.options.jitter, self.options.jitter)
                        )
                        if outcome not in ("idle", "unchanged"):
                            self._log(logging.INFO, "step", outcome=outcome)
                except SpeccError as exc:
                    failures += 1
                    self._backoff(failures)
                    self._log(logging.ERROR, "step failed", error=str(exc), failures=failures)
                except Exception as exc:  # never let a bug end the loop: log, count, back off
                    failures += 1
                    self._backoff(failures)
                    self.metrics.errors.labels(self.options.cluster, "internal").inc()
                    self.logger.exception("step failed unexpectedly")
                    self._log(logging.ERROR, "step failed", error=repr(exc), failures=failures)
                wake_at = [self.next_fetch]
                if not failures and self.last_applied:
                    wake_at.append(self.next_resync)
                heal_at = self.healer.next_due()
                if heal_at is not None:
                    wake_at.append(heal_at)
                delay = max(min(wake_at) - time.monotonic(), 0.01)
                # /healthz tells a wait (however long) from a step that stopped progressing.
                self._waiting_until = time.monotonic() + delay
                self.trigger.wait(delay)
                self._waiting_until = 0.0
        finally:
            self._running = False
            self.healer.disarm()
            if renewer is not None:
                self.stop.set()
                renewer.join(timeout=5)
                self._elector.release()
            self.leading.clear()
            self.shutdown_server()

    def _backoff(self, failures: int) -> None:
        backoff = self.options.interval * 2 ** (failures - 1)
        self.next_fetch = time.monotonic() + min(backoff, self.options.max_backoff)

    def _loop_alive(self) -> bool:
        """Return whether run() is looping (its thread did not die or leave the loop)."""
        return self._running

    # -- HTTP: metrics, health, webhook (specc.agentserver) ----------------------------------

    def serve(self) -> int | None:
        """Start /metrics, /healthz, /readyz and POST /hook; return the port (None if disabled)."""
        if self.options.listen is None or self._server.port is not None:
            return self._server.port
        host, port = self.options.listen
        return self._server.start(host, port)

    def shutdown_server(self) -> None:
        self._server.stop()


class _Wake(threading.Event):
    """What the loop waits on. ``set()`` (a /hook, a new leader, stop) also asks for a
    fetch; ``nudge()`` (drift seen by a watch) only wakes the loop, to heal."""

    def __init__(self) -> None:
        super().__init__()
        self._fetch = False

    def set(self) -> None:
        self._fetch = True
        super().set()

    def nudge(self) -> None:
        super().set()

    def take_fetch(self) -> bool:
        """Return whether a fetch was asked for since the last call."""
        asked, self._fetch = self._fetch, False
        return asked


class _Stop(threading.Event):
    """The stop flag; setting it also sets the loop's trigger, so no wait outlives SIGTERM."""

    def __init__(self, wakes: threading.Event) -> None:
        super().__init__()
        self._wakes = wakes

    def set(self) -> None:
        super().set()
        self._wakes.set()


class SyncFailed(SpeccError):
    """A sync ran but did not converge (refused, failed objects, interrupted)."""


class CommitRefused(SpeccError):
    """A commit the agent will not apply, with the reason (``invalid``, ``cluster-unknown``...)."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.message = message
        super().__init__(message)

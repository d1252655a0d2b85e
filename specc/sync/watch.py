"""Watching an ApplySet's members: one LIST, then WATCH from its resourceVersion, per group-kind.

Kubernetes' controllers observe by WATCH, and so does the agent between its resyncs: a
thread per group-kind of the inventory (a fleet has a few dozen at most) lists the
members once, then follows their changes with bookmarks, so a quiet cluster costs no
requests at all. A watch the server ends is resumed from the last resourceVersion seen
(no LIST); one whose version is too old (410 Gone) or whose connection broke lists
again, after a backoff, and hands the fresh list over, so that nothing that happened
while it was not watching goes unseen.

The watch only reports; what an event means is the caller's to decide.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from specc.errors import SpeccError
from specc.sync.cluster import ApiError, Cluster, Resource

logger = logging.getLogger("specc.agent.watch")

#: (event type, object): ADDED, MODIFIED or DELETED and the object as the server sent it.
OnEvent = Callable[[str, dict[str, Any]], None]
#: (group-kind, every member the LIST returned): after the first LIST and every relist.
OnList = Callable[[str, list[dict[str, Any]]], None]
#: (group-kind, why: gone, error or closed).
OnRestart = Callable[[str, str], None]


@dataclass(frozen=True)
class WatchOptions:
    #: The server ends each watch after a random time in [timeout, 2 * timeout) seconds
    #: (client-go's spread), so that many agents' watches do not all restart together.
    timeout: int = 300
    backoff: float = 0.5
    max_backoff: float = 30.0


class _Watch:
    """One group-kind: LIST, then WATCH, until closed."""

    def __init__(self, owner: InventoryWatch, group_kind: str, resource: Resource) -> None:
        self.owner = owner
        self.group_kind = group_kind
        self.resource = resource
        self.closed = threading.Event()
        self.version = ""
        self._response: Any = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(
            target=self._run, name=f"specc-watch-{group_kind}", daemon=True
        )

    def close(self) -> None:
        self.closed.set()
        with self._lock:
            response = self._response
        if response is not None:
            # Ends a read blocked on the socket now, not at the next event or bookmark.
            try:
                shutdown = getattr(response, "shutdown", None)
                (shutdown or response.close)()
            except Exception:  # closing a stream that is already gone
                pass

    def _opened(self, response: Any) -> None:
        with self._lock:
            self._response = response
        if self.closed.is_set():
            self.close()

    def _run(self) -> None:
        owner = self.owner
        failures = 0
        while not self.closed.is_set():
            try:
                if not self.version:
                    items, self.version = owner.cluster.list_at(self.resource, owner.selector)
                    if self.closed.is_set():
                        return
                    owner.on_list(self.group_kind, items)
                timeout = owner.options.timeout
                timeout += random.randrange(max(timeout, 1))
                reason = "closed"
                for event in owner.cluster.watch(
                    self.resource, owner.selector, self.version, timeout, self._opened
                ):
                    if self.closed.is_set():
                        return
                    kind = str(event.get("type", ""))
                    obj = event.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code") or 0)
                        reason = "gone" if code == 410 else "error"
                        self.version = ""  # too old, or broken: list again
                        if code != 410:
                            # Counted, or a watch that fails each time relists twice a second.
                            failures += 1
                            logger.warning(
                                "watch of %s failed: %s", self.group_kind, obj.get("message")
                            )
                        break
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                    self.version = version or self.version
                    failures = 0
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        obj.setdefault("apiVersion", self.resource.api_version)
                        obj.setdefault("kind", self.resource.kind)
                        owner.on_event(kind, obj)
            except ApiError as exc:
                reason = "gone" if exc.status == 410 else "error"
                self.version = ""
                if exc.status != 410:
                    failures += 1
                    logger.warning("watch of %s failed: %s", self.group_kind, exc)
            except SpeccError as exc:
                if self.closed.is_set():
                    return
                # A dropped connection: resume from the last version seen; if the server
                # no longer has it, the watch answers 410 and the next round lists.
                reason = "error"
                failures += 1
                logger.warning("watch of %s dropped: %s", self.group_kind, exc)
            except Exception:  # a bug must not end the watch silently: log, back off, list
                reason = "error"
                failures += 1
                self.version = ""
                logger.exception("watch of %s failed unexpectedly", self.group_kind)
            finally:
                with self._lock:
                    self._response = None
            if self.closed.is_set():
                return
            owner.on_restart(self.group_kind, reason)
            if reason == "closed":
                continue  # the server's timeout: watch again from where it ended
            opts = owner.options
            # 410 after a quiet watch: relist after a short pause; failures back off.
            delay = min(opts.backoff * 2 ** max(failures - 1, 0), opts.max_backoff)
            if self.closed.wait(delay * (0.5 + random.random())):
                return


class InventoryWatch:
    """Watches of the members of one ApplySet (label ``selector``), a thread per group-kind."""

    def __init__(
        self,
        cluster: Cluster,
        selector: str,
        on_event: OnEvent,
        on_list: OnList,
        on_restart: OnRestart | None = None,
        options: WatchOptions | None = None,
    ) -> None:
        self.cluster = cluster
        self.selector = selector
        self.on_event = on_event
        self.on_list = on_list
        self.on_restart: OnRestart = on_restart or (lambda _gk, _why: None)
        self.options = options or WatchOptions()
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()

    @property
    def group_kinds(self) -> set[str]:
        with self._lock:
            return set(self._watches)

    def ensure(self, resources: dict[str, Resource]) -> None:
        """Watch exactly the group-kinds of ``resources``: start new watches, end dropped ones."""
        with self._lock:
            for gk in [gk for gk in self._watches if gk not in resources]:
                self._watches.pop(gk).close()
            for gk, resource in sorted(resources.items()):
                current = self._watches.get(gk)
                if current is not None and current.resource == resource:
                    continue
                if current is not None:
                    current.close()
                watch = _Watch(self, gk, resource)
                self._watches[gk] = watch
                watch.thread.start()

    def close(self, wait: float = 0.0) -> None:
        """End every watch (at once: blocked reads are interrupted); join for ``wait`` seconds."""
        with self._lock:
            watches = list(self._watches.values())
            self._watches.clear()
        for w in watches:
            w.close()
        for w in watches:
            if wait > 0:
                w.thread.join(timeout=wait)

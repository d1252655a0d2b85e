"""Object storage for the API server double: objects per resource, one resourceVersion.

Like etcd behind the real server, there is one monotonic revision for all objects;
every write takes the next one, and a no-op write takes none. Writes are also kept in
a bounded event log so that WATCH can replay from a resourceVersion. Events that fall
out of the log (or are dropped by :meth:`Store.compact`, like etcd's compaction) are gone:
a watch from an older resourceVersion gets 410 Gone, as from the real server.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

ResourceKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped


@dataclass(frozen=True)
class Event:
    """One change, as WATCH reports it."""

    revision: int
    type: str  # ADDED, MODIFIED, DELETED
    resource: ResourceKey
    obj: dict[str, Any]


class Store:
    """Thread-safe objects by resource and (namespace, name), with a shared revision."""

    def __init__(self, first_revision: int = 1000, event_log: int = 20000) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.revision = first_revision
        self._objects: dict[ResourceKey, dict[ObjectKey, dict[str, Any]]] = {}
        self.events: deque[Event] = deque(maxlen=event_log)
        #: Newest revision no longer in the event log; watches from it or older are Gone.
        self.compacted = first_revision

    def next_revision(self) -> int:
        """Return a new revision (callers hold the lock)."""
        self.revision += 1
        return self.revision

    def get(self, resource: ResourceKey, key: ObjectKey) -> dict[str, Any] | None:
        """Return the stored object or None; callers must not modify it."""
        return self._objects.get(resource, {}).get(key)

    def put(
        self, resource: ResourceKey, key: ObjectKey, obj: dict[str, Any], created: bool
    ) -> None:
        """Store ``obj`` (whose resourceVersion the caller set) and record the event."""
        self._objects.setdefault(resource, {})[key] = obj
        revision = int(obj["metadata"]["resourceVersion"])
        self._append(Event(revision, "ADDED" if created else "MODIFIED", resource, obj))

    def remove(self, resource: ResourceKey, key: ObjectKey, final: dict[str, Any]) -> None:
        """Remove an object; ``final`` is its last state with the deletion's revision."""
        self._objects.get(resource, {}).pop(key, None)
        revision = int(final["metadata"]["resourceVersion"])
        self._append(Event(revision, "DELETED", resource, final))

    def _append(self, event: Event) -> None:
        if self.events.maxlen is not None and len(self.events) == self.events.maxlen:
            self.compacted = max(self.compacted, self.events[0].revision)
        self.events.append(event)
        self.changed.notify_all()

    def compact(self, revision: int | None = None) -> None:
        """Drop the events up to ``revision`` (default: all), as etcd's compaction does."""
        with self.lock:
            upto = self.revision if revision is None else revision
            while self.events and self.events[0].revision <= upto:
                self.events.popleft()
            self.compacted = max(self.compacted, upto)

    def events_after(self, revision: int, resource: ResourceKey) -> list[Event]:
        """Return the events of ``resource`` newer than ``revision``, oldest first (lock held)."""
        out = []
        for event in reversed(self.events):  # newest first: stop at the first one seen
            if event.revision <= revision:
                break
            if event.resource == resource:
                out.append(event)
        out.reverse()
        return out

    def items(self, resource: ResourceKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return objects of one resource in etcd key order, optionally in one namespace."""
        objects = self._objects.get(resource, {})
        keys = sorted(k for k in objects if namespace is None or k[0] == namespace)
        return [objects[k] for k in keys]

    def keys(self, resource: ResourceKey) -> list[ObjectKey]:
        """Return the object keys of one resource."""
        return list(self._objects.get(resource, {}))

    def drop_resource(self, resource: ResourceKey) -> None:
        """Forget every object of a resource (its CRD was deleted)."""
        self._objects.pop(resource, None)

    def clear(self) -> None:
        """Remove every object and event; the revision keeps counting up."""
        with self.lock:
            self._objects.clear()
            self.events.clear()
            self.compacted = self.revision

"""Leader election with a ``coordination.k8s.io/v1`` Lease: one agent replica acts at a time.

The same protocol as client-go's leaderelection: the holder renews ``renewTime``; a
candidate takes the lease only once ``renewTime + leaseDurationSeconds`` has passed, and
every write carries the resourceVersion it read, so two candidates cannot both win.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from specc.errors import ClusterError
from specc.sync.cluster import ApiError, Cluster

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _now() -> datetime:
    return datetime.now(UTC)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    for fmt in (_FORMAT, "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class LeaseOptions:
    name: str
    namespace: str = "specc-system"
    identity: str = ""
    duration: float = 15.0


class LeaderElector:
    """Acquires, renews and releases one Lease for ``identity``."""

    def __init__(self, cluster: Cluster, options: LeaseOptions) -> None:
        self.cluster = cluster
        self.options = options
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{options.namespace}/leases"

    def _body(self, current: dict[str, Any] | None, holder: str, acquire: bool) -> dict[str, Any]:
        now = _now().strftime(_FORMAT)
        spec = dict((current or {}).get("spec") or {})
        transitions = int(spec.get("leaseTransitions") or 0)
        if acquire and current is not None and spec.get("holderIdentity") != holder:
            transitions += 1
        spec.update(
            {
                "holderIdentity": holder,
                "leaseDurationSeconds": int(self.options.duration),
                "renewTime": now,
                "leaseTransitions": transitions,
            }
        )
        if acquire:
            spec["acquireTime"] = now
        meta: dict[str, Any] = {"name": self.options.name, "namespace": self.options.namespace}
        if current is not None:
            meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec,
        }

    def _get(self) -> dict[str, Any] | None:
        try:
            return self.cluster.request(
                "get", "GET", f"{self.path}/{self.options.name}", what="get lease"
            )
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def try_acquire_or_renew(self) -> bool:
        """Return whether this identity holds the lease after one attempt to take or renew it."""
        me = self.options.identity
        try:
            current = self._get()
            if current is None:
                self._create(self._body(None, me, True))
                return True
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            if holder == me:
                self._put(self._body(current, me, False))
                return True
            renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
            duration = float(spec.get("leaseDurationSeconds") or self.options.duration)
            if holder and renewed is not None and renewed + timedelta(seconds=duration) > _now():
                return False  # someone else holds a live lease
            self._put(self._body(current, me, True))
            return True
        except ApiError as exc:
            if exc.status in (409, 422):
                return False  # lost a race with another candidate
            raise

    def _create(self, body: dict[str, Any]) -> None:
        try:
            self.cluster.request("create", "POST", self.path, body=body, what="create lease")
        except ApiError as exc:
            if exc.status != 404:
                raise
            # First agent on a fresh cluster: the lease's namespace does not exist yet.
            namespace = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": self.options.namespace},
            }
            self.cluster.apply(namespace, force=True)
            self.cluster.request("create", "POST", self.path, body=body, what="create lease")

    def _put(self, body: dict[str, Any]) -> None:
        self.cluster.request(
            "update", "PUT", f"{self.path}/{self.options.name}", body=body, what="update lease"
        )

    def release(self) -> None:
        """Give the lease up so another replica can take over at once (on graceful shutdown)."""
        try:
            current = self._get()
            if (
                current is None
                or (current.get("spec") or {}).get("holderIdentity") != self.options.identity
            ):
                return
            body = self._body(current, "", False)
            body["spec"]["leaseDurationSeconds"] = 1
            self._put(body)
        except ClusterError:
            return  # the lease expires by itself

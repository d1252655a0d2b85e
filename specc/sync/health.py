"""Health of applied objects, computed like kstatus: is each object where the commit wants it?

Pure functions over live objects; ``wait_healthy`` polls the cluster until every object
is Current or the timeout passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from specc.objects import DesiredObject, ObjectKey
from specc.progress import NULL, Progress
from specc.sync.cluster import Cluster

Status = Literal["Current", "InProgress", "Failed", "NotFound"]


@dataclass(frozen=True)
class Health:
    key: ObjectKey
    status: Status
    message: str = ""


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return dict(c)
    return None


def _true(obj: dict[str, Any], kind: str) -> bool:
    c = _condition(obj, kind)
    return bool(c and c.get("status") == "True")


def health(key: ObjectKey, live: dict[str, Any] | None) -> Health:
    """Return the health of one live object (``None`` when it does not exist)."""
    if live is None:
        return Health(key, "NotFound", "not found")
    meta = live.get("metadata") or {}
    status = live.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return Health(key, "InProgress", f"generation {generation} not yet observed")
    gk = key.group_kind
    spec = live.get("spec") or {}
    if gk in ("Deployment.apps", "StatefulSet.apps", "ReplicaSet.apps"):
        if observed is None:
            return Health(key, "InProgress", "not yet observed by its controller")
        want = spec.get("replicas", 1)
        if gk == "StatefulSet.apps":
            partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get(
                "partition", 0
            )
            updated = status.get("updatedReplicas", 0)
            if updated < want - partition:
                return Health(key, "InProgress", f"{updated}/{want - partition} members updated")
            ready = status.get("readyReplicas", 0)
        else:
            if (
                _condition(live, "Progressing")
                and (_condition(live, "Progressing") or {}).get("reason")
                == "ProgressDeadlineExceeded"
            ):
                return Health(key, "Failed", "progress deadline exceeded")
            updated = status.get("updatedReplicas", 0)
            if updated < want:
                return Health(key, "InProgress", f"{updated}/{want} replicas updated")
            ready = status.get("availableReplicas", 0)
        if ready < want:
            return Health(key, "InProgress", f"{ready}/{want} replicas ready")
        return Health(key, "Current", f"{ready}/{want} ready")
    if gk == "DaemonSet.apps":
        want = status.get("desiredNumberScheduled", 0)
        if (
            status.get("numberAvailable", 0) < want
            or status.get("updatedNumberScheduled", 0) < want
        ):
            return Health(key, "InProgress", f"{status.get('numberAvailable', 0)}/{want} available")
        return Health(key, "Current")
    if gk == "Job.batch":
        if _true(live, "Failed"):
            return Health(
                key, "Failed", str((_condition(live, "Failed") or {}).get("message", "job failed"))
            )
        if _true(live, "Complete"):
            return Health(key, "Current", "complete")
        return Health(key, "InProgress", "running")
    if gk == "PersistentVolumeClaim":
        phase = status.get("phase")
        return Health(key, "Current" if phase == "Bound" else "InProgress", f"phase {phase}")
    if gk == "CustomResourceDefinition.apiextensions.k8s.io":
        return Health(key, "Current" if _true(live, "Established") else "InProgress", "")
    if gk == "Service" and spec.get("type") == "LoadBalancer":
        ingress = (status.get("loadBalancer") or {}).get("ingress")
        return Health(
            key, "Current" if ingress else "InProgress", "" if ingress else "no load balancer yet"
        )
    ready = _condition(live, "Ready")
    if ready is not None:
        if ready.get("status") == "True":
            return Health(key, "Current")
        return Health(
            key, "InProgress", str(ready.get("message") or ready.get("reason") or "not ready")
        )
    return Health(key, "Current")


@dataclass(frozen=True)
class Wait:
    """What ``wait_healthy`` saw: each object's last health, and whether time ran out."""

    healths: list[Health]
    timed_out: bool
    elapsed: float

    @property
    def pending(self) -> list[Health]:
        """The objects not yet Current or Failed, with what each still waits for."""
        return [h for h in self.healths if h.status in ("InProgress", "NotFound")]


def wait_healthy(
    cluster: Cluster,
    objects: list[DesiredObject],
    timeout: float,
    interval: float = 2.0,
    progress: Progress = NULL,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Wait:
    """Poll until every object is Current (or Failed), or ``timeout`` seconds pass.

    The deadline holds within one request: a poll stops between objects when it passes
    (objects not reached keep their last health), and the pause before the next poll
    never runs past it.
    """
    start = clock()
    deadline = start + timeout
    pending = list(objects)
    done: dict[ObjectKey, Health] = {
        o.key: Health(o.key, "InProgress", "not checked yet") for o in objects
    }
    progress.phase("wait for health", total=len(objects))
    timed_out = False
    while True:
        still = []
        for i, obj in enumerate(pending):
            if clock() >= deadline:
                still.extend(pending[i:])
                timed_out = True
                break
            h = health(obj.key, cluster.get(obj.api_version, obj.kind, obj.namespace, obj.name))
            done[obj.key] = h
            if h.status in ("InProgress", "NotFound"):
                still.append(obj)
        pending = still
        first = done[pending[0].key] if pending else None
        detail = f"waiting for {first.key}: {first.message}" if first else ""
        progress.update(len(objects) - len(pending), detail)
        left = deadline - clock()
        if not pending or timed_out or left <= 0:
            timed_out = bool(pending)
            return Wait([done[o.key] for o in objects], timed_out, clock() - start)
        sleep(min(interval, left))

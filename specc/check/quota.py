"""Requests × maximum replicas against the namespace's ResourceQuota, offline.

Each workload's pods are counted at their most: a Deployment or StatefulSet at its
``replicas``, or at the ``maxReplicas`` of the HorizontalPodAutoscaler that scales it;
a Job at its ``parallelism``, a CronJob as one run at a time, a Pod once (a DaemonSet
runs one pod per node, which the render does not know: left out). A container's
request is its own, else its limit, else the LimitRange's ``defaultRequest`` (then
``default``), as the LimitRanger admission plugin fills it in.

- One workload alone beyond the quota (3 members × 8 CPU in 16) is an **error**: the
  quota admission refuses its last pods, so it never becomes ready as declared.
- The namespace's workloads together beyond it, each at its maximum, is a **warning**:
  they fit until autoscalers scale out (and a rolling update's surge needs room too).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from specc.check.podsecurity import TEMPLATE_PATHS, FieldPath
from specc.errors import Finding, object_ref
from specc.objects import DesiredObject
from specc.quantity import parse_quantity

#: Quota keys this check sums, and where a container's amount comes from.
_KEYS = {
    "requests.cpu": ("requests", "cpu"),
    "cpu": ("requests", "cpu"),
    "requests.memory": ("requests", "memory"),
    "memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
}


@dataclass(frozen=True)
class _Usage:
    obj: DesiredObject
    where: FieldPath
    replicas: int
    per_pod: dict[str, Fraction]


def check_quota(objects: list[DesiredObject]) -> list[Finding]:
    """Return the quota findings of a cluster's objects: errors and warnings."""
    quotas: dict[str, list[DesiredObject]] = defaultdict(list)
    limits: dict[str, dict[str, dict[str, Any]]] = {}
    scaled: dict[tuple[str, str, str], int] = {}
    for obj in objects:
        ns = _namespace(obj)
        spec = obj.body.get("spec")
        spec = spec if isinstance(spec, dict) else {}
        if obj.kind == "ResourceQuota" and isinstance(spec.get("hard"), dict):
            quotas[ns].append(obj)
        elif obj.kind == "LimitRange":
            limits[ns] = _container_defaults(spec)
        elif obj.kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            if isinstance(ref, dict) and isinstance(spec.get("maxReplicas"), int):
                scaled[(ns, str(ref.get("kind")), str(ref.get("name")))] = spec["maxReplicas"]
    if not quotas:
        return []
    usages: dict[str, list[_Usage]] = defaultdict(list)
    for obj in objects:
        ns = _namespace(obj)
        where = TEMPLATE_PATHS.get((str(obj.body.get("apiVersion")), obj.kind))
        if ns not in quotas or where is None or obj.kind == "DaemonSet":
            continue
        usage = _usage(obj, where, scaled.get((ns, obj.kind, obj.name)), limits.get(ns, {}))
        if usage is not None:
            usages[ns].append(usage)
    findings: list[Finding] = []
    for ns, items in usages.items():
        for quota in quotas[ns]:
            findings += _against(quota, items)
    return findings


def _against(quota: DesiredObject, usages: list[_Usage]) -> list[Finding]:
    hard = quota.body["spec"]["hard"]
    quota_ref = object_ref("ResourceQuota", _namespace(quota) or None, quota.name)
    out: list[Finding] = []
    for key, limit_text in sorted(hard.items()):
        limit = _amount(limit_text)
        if limit is None or (key not in _KEYS and key != "pods"):
            continue

        def total(u: _Usage, key: str = key) -> Fraction:
            return u.replicas * (Fraction(1) if key == "pods" else u.per_pod.get(key, Fraction(0)))

        for u in usages:
            need = total(u)
            if need > limit:
                out.append(
                    Finding(
                        u.obj.position_of((*u.where, "spec", "containers", 0, "resources")),
                        f"{u.replicas} pods need {key} {_show(need, key)} at most, beyond "
                        f"{quota_ref} ({key}: {limit_text}): the quota refuses the last "
                        "pods, so this workload never runs as declared",
                        "",
                        object_ref(u.obj.kind, _namespace(u.obj) or None, u.obj.name),
                    )
                )
        together = sum((total(u) for u in usages), Fraction(0))
        if together > limit and not any(total(u) > limit for u in usages):
            out.append(
                Finding(
                    quota.source,
                    f"the namespace's workloads at their maximum replicas need {key} "
                    f"{_show(together, key)}, beyond its quota ({key}: {limit_text}): some pods "
                    "will be refused when they all scale out",
                    f"spec.hard[{key!r}]",
                    quota_ref,
                    "warning",
                )
            )
    return out


def _usage(
    obj: DesiredObject, where: FieldPath, hpa_max: int | None, defaults: dict[str, dict[str, Any]]
) -> _Usage | None:
    template: Any = obj.body
    for key in where:
        template = template.get(key) if isinstance(template, dict) else None
    pod = template.get("spec") if isinstance(template, dict) else None
    if not isinstance(pod, dict):
        return None
    spec = obj.body.get("spec") or {}
    if hpa_max is not None:
        replicas = hpa_max
    elif obj.kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
        replicas = spec.get("replicas", 1)
    elif obj.kind == "Job":
        replicas = spec.get("parallelism", 1)
    else:
        replicas = 1
    if not isinstance(replicas, int):
        return None
    per_pod: dict[str, Fraction] = defaultdict(Fraction)
    containers = pod.get("containers")
    for c in containers if isinstance(containers, list) else []:
        res = c.get("resources") if isinstance(c, dict) else None
        res = res if isinstance(res, dict) else {}
        for key, (side, resource) in _KEYS.items():
            amount = _container_amount(res, side, resource, defaults)
            if amount is not None:
                per_pod[key] += amount
    return _Usage(obj, where, replicas, dict(per_pod))


def _container_amount(
    res: dict[str, Any], side: str, resource: str, defaults: dict[str, dict[str, Any]]
) -> Fraction | None:
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    if side == "requests":
        order = [
            requests.get(resource),
            limits.get(resource),
            defaults.get("defaultRequest", {}).get(resource),
            defaults.get("default", {}).get(resource),
        ]
    else:
        order = [limits.get(resource), defaults.get("default", {}).get(resource)]
    for value in order:
        if value is not None:
            return _amount(value)
    return None


def _container_defaults(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    for item in spec.get("limits") or []:
        if isinstance(item, dict) and item.get("type") == "Container":
            return {
                k: v
                for k, v in item.items()
                if k in ("default", "defaultRequest") and isinstance(v, dict)
            }
    return {}


def _amount(value: Any) -> Fraction | None:
    try:
        return Fraction(parse_quantity(value).value)
    except (ValueError, TypeError):
        return None


def _show(amount: Fraction, key: str) -> str:
    if key == "pods":
        return str(int(amount))
    if "cpu" in key:
        return f"{float(amount):g}"
    for unit, size in (("Gi", 2**30), ("Mi", 2**20)):
        if amount >= size:
            return f"{float(amount / size):g}{unit}"
    return f"{float(amount):g}"


def _namespace(obj: DesiredObject) -> str:
    meta = obj.body.get("metadata")
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    return ns if isinstance(ns, str) else ""

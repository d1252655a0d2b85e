"""Apply order: what must exist before what. Prune runs the same waves in reverse."""

from __future__ import annotations

from specc.objects import ObjectKey

#: Groups that ship with Kubernetes; anything else is a custom resource (last wave).
BUILTIN_GROUPS = frozenset(
    {
        "",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "apps",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
    }
)

_WAVES: dict[str, int] = {
    # Namespaces and CRDs: everything else lives in or is typed by them.
    "Namespace": 0,
    "CustomResourceDefinition.apiextensions.k8s.io": 0,
    # What pods and controllers refer to.
    "ServiceAccount": 1,
    "Secret": 1,
    "ConfigMap": 1,
    "PersistentVolume": 1,
    "PersistentVolumeClaim": 1,
    "ResourceQuota": 1,
    "LimitRange": 1,
    "StorageClass.storage.k8s.io": 1,
    "PriorityClass.scheduling.k8s.io": 1,
    "ClusterRole.rbac.authorization.k8s.io": 1,
    "ClusterRoleBinding.rbac.authorization.k8s.io": 1,
    "Role.rbac.authorization.k8s.io": 1,
    "RoleBinding.rbac.authorization.k8s.io": 1,
    "Service": 2,
    "Deployment.apps": 3,
    "StatefulSet.apps": 3,
    "DaemonSet.apps": 3,
    "ReplicaSet.apps": 3,
    "Job.batch": 3,
    "CronJob.batch": 3,
    "Pod": 3,
    "HorizontalPodAutoscaler.autoscaling": 4,
    "PodDisruptionBudget.policy": 4,
    "NetworkPolicy.networking.k8s.io": 4,
    "Ingress.networking.k8s.io": 4,
}

WAVE_NAMES = (
    "namespaces and CRDs",
    "config and RBAC",
    "services",
    "workloads",
    "policies",
    "custom resources",
)
LAST_WAVE = len(WAVE_NAMES) - 1


def wave_of(key: ObjectKey) -> int:
    """Return the wave (0 first) in which an object of this kind is applied."""
    wave = _WAVES.get(key.group_kind)
    if wave is not None:
        return wave
    return 4 if key.group in BUILTIN_GROUPS else LAST_WAVE


def apply_order(keys: list[ObjectKey]) -> list[list[ObjectKey]]:
    """Return ``keys`` grouped by wave, in apply order, each wave sorted."""
    waves: list[list[ObjectKey]] = [[] for _ in WAVE_NAMES]
    for k in keys:
        waves[wave_of(k)].append(k)
    return [sorted(w) for w in waves]

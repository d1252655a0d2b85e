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
    # What pods and controllers refer to, and the roles bindings refer to: with RBAC on,
    # a binding to a role that does not exist yet is refused (the API server cannot check
    # that the applier holds the role's permissions), so roles come a wave earlier.
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
    "Role.rbac.authorization.k8s.io": 1,
    "ClusterRoleBinding.rbac.authorization.k8s.io": 2,
    "RoleBinding.rbac.authorization.k8s.io": 2,
    "Service": 3,
    "Deployment.apps": 4,
    "StatefulSet.apps": 4,
    "DaemonSet.apps": 4,
    "ReplicaSet.apps": 4,
    "Job.batch": 4,
    "CronJob.batch": 4,
    "Pod": 4,
    "HorizontalPodAutoscaler.autoscaling": 5,
    "PodDisruptionBudget.policy": 5,
    "NetworkPolicy.networking.k8s.io": 5,
    "Ingress.networking.k8s.io": 5,
}

WAVE_NAMES = (
    "namespaces and CRDs",
    "config and roles",
    "role bindings",
    "services",
    "workloads",
    "policies",
    "custom resources",
)
POLICY_WAVE = WAVE_NAMES.index("policies")
LAST_WAVE = len(WAVE_NAMES) - 1


def wave_of(key: ObjectKey) -> int:
    """Return the wave (0 first) in which an object of this kind is applied."""
    wave = _WAVES.get(key.group_kind)
    if wave is not None:
        return wave
    return POLICY_WAVE if key.group in BUILTIN_GROUPS else LAST_WAVE


def apply_order(keys: list[ObjectKey]) -> list[list[ObjectKey]]:
    """Return ``keys`` grouped by wave, in apply order, each wave sorted."""
    waves: list[list[ObjectKey]] = [[] for _ in WAVE_NAMES]
    for k in keys:
        waves[wave_of(k)].append(k)
    return [sorted(w) for w in waves]

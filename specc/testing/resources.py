"""The built-in resources the double serves, with their discovery metadata.

The table below was extracted from the aggregated discovery document of a real
kube-apiserver v1.36 (``shared/apiserver-transcripts/discovery.json``, steps 5-6) for
the resources specc works with; regenerate it the same way when adding a resource.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Subresource:
    """A subresource (``status``, ``scale``…) and the kind it answers with."""

    name: str
    group: str
    version: str
    kind: str
    verbs: tuple[str, ...]


@dataclass(frozen=True)
class ResourceType:
    """One served resource: where it lives in the API and how discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[Subresource, ...] = ()
    # Custom resources carry the CRD's schema; built-ins are typed from OpenAPI.
    crd_schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    crd_status_subresource: bool = False

    @property
    def group_version(self) -> str:
        """Return ``group/version`` (``v1`` for the core group)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> str:
        """Return ``Kind.group`` as the API server names kinds in messages (``Deployment.apps``)."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def has_status(self) -> bool:
        """Return whether writes to the main resource leave ``status`` alone."""
        if self.crd_schema is not None:
            return self.crd_status_subresource
        return any(s.name == "status" for s in self.subresources)

    @property
    def storage_version_hash(self) -> str:
        """Return the discovery ``storageVersionHash`` (``storageversionhash.StorageVersionHash``)."""
        digest = hashlib.sha256(f"{self.group}/{self.version}/{self.kind}".encode()).digest()
        return base64.b64encode(digest[:8]).decode()


def _resource(raw: dict[str, Any]) -> ResourceType:
    return ResourceType(
        group=raw["group"],
        version=raw["version"],
        kind=raw["kind"],
        plural=raw["plural"],
        singular=raw["singular"],
        namespaced=raw["namespaced"],
        verbs=tuple(raw["verbs"]),
        short_names=tuple(raw.get("short_names", ())),
        categories=tuple(raw.get("categories", ())),
        subresources=tuple(
            Subresource(name, group, version, kind, tuple(verbs))
            for name, group, version, kind, verbs in raw.get("subresources", ())
        ),
    )


# What discovery lists for almost every resource, and for its status/scale subresources.
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUB_VERBS = ("get", "patch", "update")

BUILTIN_RESOURCES_RAW: list[dict[str, Any]] = [
    {
        "group": "",
        "version": "v1",
        "kind": "ConfigMap",
        "plural": "configmaps",
        "singular": "configmap",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["cm"],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "Endpoints",
        "plural": "endpoints",
        "singular": "endpoints",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["ep"],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "Event",
        "plural": "events",
        "singular": "event",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["ev"],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "LimitRange",
        "plural": "limitranges",
        "singular": "limitrange",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["limits"],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "Namespace",
        "plural": "namespaces",
        "singular": "namespace",
        "namespaced": False,
        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
        "short_names": ["ns"],
        "subresources": [
            ("finalize", "", "", "Namespace", ["update"]),
            ("status", "", "", "Namespace", SUB_VERBS),
        ],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "PersistentVolumeClaim",
        "plural": "persistentvolumeclaims",
        "singular": "persistentvolumeclaim",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["pvc"],
        "subresources": [("status", "", "", "PersistentVolumeClaim", SUB_VERBS)],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "PersistentVolume",
        "plural": "persistentvolumes",
        "singular": "persistentvolume",
        "namespaced": False,
        "verbs": ALL_VERBS,
        "short_names": ["pv"],
        "subresources": [("status", "", "", "PersistentVolume", SUB_VERBS)],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "Pod",
        "plural": "pods",
        "singular": "pod",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["po"],
        "categories": ["all"],
        "subresources": [
            ("attach", "", "", "PodAttachOptions", ["create", "get"]),
            ("binding", "", "", "Binding", ["create"]),
            ("ephemeralcontainers", "", "", "Pod", SUB_VERBS),
            ("eviction", "policy", "v1", "Eviction", ["create"]),
            ("exec", "", "", "PodExecOptions", ["create", "get"]),
            ("log", "", "", "Pod", ["get"]),
            ("portforward", "", "", "PodPortForwardOptions", ["create", "get"]),
            ("proxy", "", "", "PodProxyOptions", ["create", "delete", "get", "patch", "update"]),
            ("resize", "", "", "Pod", SUB_VERBS),
            ("status", "", "", "Pod", SUB_VERBS),
        ],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "ResourceQuota",
        "plural": "resourcequotas",
        "singular": "resourcequota",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["quota"],
        "subresources": [("status", "", "", "ResourceQuota", SUB_VERBS)],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "Secret",
        "plural": "secrets",
        "singular": "secret",
        "namespaced": True,
        "verbs": ALL_VERBS,
    },
    {
        "group": "",
        "version": "v1",
        "kind": "ServiceAccount",
        "plural": "serviceaccounts",
        "singular": "serviceaccount",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["sa"],
        "subresources": [("token", "authentication.k8s.io", "v1", "TokenRequest", ["create"])],
    },
    {
        "group": "",
        "version": "v1",
        "kind": "Service",
        "plural": "services",
        "singular": "service",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["svc"],
        "categories": ["all"],
        "subresources": [
            (
                "proxy",
                "",
                "",
                "ServiceProxyOptions",
                ["create", "delete", "get", "patch", "update"],
            ),
            ("status", "", "", "Service", SUB_VERBS),
        ],
    },
    {
        "group": "apps",
        "version": "v1",
        "kind": "ControllerRevision",
        "plural": "controllerrevisions",
        "singular": "controllerrevision",
        "namespaced": True,
        "verbs": ALL_VERBS,
    },
    {
        "group": "apps",
        "version": "v1",
        "kind": "DaemonSet",
        "plural": "daemonsets",
        "singular": "daemonset",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["ds"],
        "categories": ["all"],
        "subresources": [("status", "", "", "DaemonSet", SUB_VERBS)],
    },
    {
        "group": "apps",
        "version": "v1",
        "kind": "Deployment",
        "plural": "deployments",
        "singular": "deployment",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["deploy"],
        "categories": ["all"],
        "subresources": [
            ("scale", "autoscaling", "v1", "Scale", SUB_VERBS),
            ("status", "", "", "Deployment", SUB_VERBS),
        ],
    },
    {
        "group": "apps",
        "version": "v1",
        "kind": "ReplicaSet",
        "plural": "replicasets",
        "singular": "replicaset",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["rs"],
        "categories": ["all"],
        "subresources": [
            ("scale", "autoscaling", "v1", "Scale", SUB_VERBS),
            ("status", "", "", "ReplicaSet", SUB_VERBS),
        ],
    },
    {
        "group": "apps",
        "version": "v1",
        "kind": "StatefulSet",
        "plural": "statefulsets",
        "singular": "statefulset",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["sts"],
        "categories": ["all"],
        "subresources": [
            ("scale", "autoscaling", "v1", "Scale", SUB_VERBS),
            ("status", "", "", "StatefulSet", SUB_VERBS),
        ],
    },
    {
        "group": "autoscaling",
        "version": "v2",
        "kind": "HorizontalPodAutoscaler",
        "plural": "horizontalpodautoscalers",
        "singular": "horizontalpodautoscaler",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["hpa"],
        "categories": ["all"],
        "subresources": [("status", "", "", "HorizontalPodAutoscaler", SUB_VERBS)],
    },
    {
        "group": "batch",
        "version": "v1",
        "kind": "CronJob",
        "plural": "cronjobs",
        "singular": "cronjob",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["cj"],
        "categories": ["all"],
        "subresources": [("status", "", "", "CronJob", SUB_VERBS)],
    },
    {
        "group": "batch",
        "version": "v1",
        "kind": "Job",
        "plural": "jobs",
        "singular": "job",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "categories": ["all"],
        "subresources": [("status", "", "", "Job", SUB_VERBS)],
    },
    {
        "group": "networking.k8s.io",
        "version": "v1",
        "kind": "IngressClass",
        "plural": "ingressclasses",
        "singular": "ingressclass",
        "namespaced": False,
        "verbs": ALL_VERBS,
    },
    {
        "group": "networking.k8s.io",
        "version": "v1",
        "kind": "Ingress",
        "plural": "ingresses",
        "singular": "ingress",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["ing"],
        "subresources": [("status", "", "", "Ingress", SUB_VERBS)],
    },
    {
        "group": "networking.k8s.io",
        "version": "v1",
        "kind": "NetworkPolicy",
        "plural": "networkpolicies",
        "singular": "networkpolicy",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["netpol"],
    },
    {
        "group": "policy",
        "version": "v1",
        "kind": "PodDisruptionBudget",
        "plural": "poddisruptionbudgets",
        "singular": "poddisruptionbudget",
        "namespaced": True,
        "verbs": ALL_VERBS,
        "short_names": ["pdb"],
        "subresources": [("status", "", "", "PodDisruptionBudget", SUB_VERBS)],
    },
    {
        "group": "rbac.authorization.k8s.io",
        "version": "v1",
        "kind": "ClusterRoleBinding",
        "plural": "clusterrolebindings",
        "singular": "clusterrolebinding",
        "namespaced": False,
        "verbs": ALL_VERBS,
    },
    {
        "group": "rbac.authorization.k8s.io",
        "version": "v1",
        "kind": "ClusterRole",
        "plural": "clusterroles",
        "singular": "clusterrole",
        "namespaced": False,
        "verbs": ALL_VERBS,
    },
    {
        "group": "rbac.authorization.k8s.io",
        "version": "v1",
        "kind": "RoleBinding",
        "plural": "rolebindings",
        "singular": "rolebinding",
        "namespaced": True,
        "verbs": ALL_VERBS,
    },
    {
        "group": "rbac.authorization.k8s.io",
        "version": "v1",
        "kind": "Role",
        "plural": "roles",
        "singular": "role",
        "namespaced": True,
        "verbs": ALL_VERBS,
    },
    {
        "group": "storage.k8s.io",
        "version": "v1",
        "kind": "StorageClass",
        "plural": "storageclasses",
        "singular": "storageclass",
        "namespaced": False,
        "verbs": ALL_VERBS,
        "short_names": ["sc"],
    },
    {
        "group": "apiextensions.k8s.io",
        "version": "v1",
        "kind": "CustomResourceDefinition",
        "plural": "customresourcedefinitions",
        "singular": "customresourcedefinition",
        "namespaced": False,
        "verbs": ALL_VERBS,
        "short_names": ["crd", "crds"],
        "categories": ["api-extensions"],
        "subresources": [("status", "", "", "CustomResourceDefinition", SUB_VERBS)],
    },
    {
        "group": "scheduling.k8s.io",
        "version": "v1",
        "kind": "PriorityClass",
        "plural": "priorityclasses",
        "singular": "priorityclass",
        "namespaced": False,
        "verbs": ALL_VERBS,
        "short_names": ["pc"],
    },
    {
        "group": "coordination.k8s.io",
        "version": "v1",
        "kind": "Lease",
        "plural": "leases",
        "singular": "lease",
        "namespaced": True,
        "verbs": ALL_VERBS,
    },
]

BUILTIN_RESOURCES: tuple[ResourceType, ...] = tuple(_resource(raw) for raw in BUILTIN_RESOURCES_RAW)

# Kinds whose registry strategy sets metadata.generation and bumps it on spec changes.
GENERATION_KINDS = frozenset(
    {
        ("apps", "Deployment"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("batch", "Job"),
        ("batch", "CronJob"),
        ("networking.k8s.io", "NetworkPolicy"),
        ("networking.k8s.io", "Ingress"),
        ("networking.k8s.io", "IngressClass"),
        ("policy", "PodDisruptionBudget"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
    }
)

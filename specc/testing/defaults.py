"""Server-side defaulting of built-in kinds, as recorded from a real API server.

Only what the Kubernetes defaulters (``pkg/apis/*/v1/defaults.go``) and registry
strategies add for the common kinds; the transcripts in
``shared/apiserver-transcripts/apply-*.json`` show each of them. Values are set only
when absent, so a client that sets them explicitly keeps its value.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


def _set(obj: Obj, key: str, value: Any) -> None:
    if obj.get(key) is None:
        obj[key] = value


def _sub(obj: Obj, key: str) -> Obj:
    child = obj.get(key)
    if not isinstance(child, dict):
        child = {}
        obj[key] = child
    return child


def _image_pull_policy(image: str) -> str:
    # pkg/apis/core/v1/defaults.go: ":latest" or no tag (and no digest) pulls Always.
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    _set(probe, "timeoutSeconds", 1)
    _set(probe, "periodSeconds", 10)
    _set(probe, "successThreshold", 1)
    _set(probe, "failureThreshold", 3)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        _set(http, "scheme", "HTTP")


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(probe))
    for env in container.get("env") or []:
        ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(ref, dict):
            _set(ref, "apiVersion", "v1")
    _set(container, "resources", {})
    _set(container, "terminationMessagePath", "/dev/termination-log")
    _set(container, "terminationMessagePolicy", "File")
    _set(container, "imagePullPolicy", _image_pull_policy(str(container.get("image", ""))))


def _volume(volume: Any) -> None:
    if not isinstance(volume, dict):
        return
    for source in ("configMap", "secret"):
        if isinstance(volume.get(source), dict):
            _set(volume[source], "defaultMode", 420)
    if isinstance(volume.get("projected"), dict):
        _set(volume["projected"], "defaultMode", 420)
    if isinstance(volume.get("downwardAPI"), dict):
        _set(volume["downwardAPI"], "defaultMode", 420)


def pod_spec(spec: Obj) -> None:
    """Add the defaults of a PodSpec (containers, probes, policies)."""
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            _container(container)
    for volume in spec.get("volumes") or []:
        _volume(volume)
    _set(spec, "restartPolicy", "Always")
    _set(spec, "terminationGracePeriodSeconds", 30)
    _set(spec, "dnsPolicy", "ClusterFirst")
    _set(spec, "securityContext", {})
    _set(spec, "schedulerName", "default-scheduler")


def pod_template(template: Obj) -> None:
    """Add the defaults of a PodTemplateSpec."""
    _set(template, "metadata", {})
    pod_spec(_sub(template, "spec"))


def _deployment(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "replicas", 1)
    pod_template(_sub(spec, "template"))
    strategy = _sub(spec, "strategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        _set(rolling, "maxUnavailable", "25%")
        _set(rolling, "maxSurge", "25%")
    _set(spec, "revisionHistoryLimit", 10)
    _set(spec, "progressDeadlineSeconds", 600)


def _pvc_spec(spec: Obj) -> None:
    _set(spec, "volumeMode", "Filesystem")


def _statefulset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "replicas", 1)
    pod_template(_sub(spec, "template"))
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            _set(claim, "kind", "PersistentVolumeClaim")
            _set(claim, "apiVersion", "v1")
            _set(claim, "metadata", {})
            _pvc_spec(_sub(claim, "spec"))
            _set(claim, "status", {"phase": "Pending"})
    _set(spec, "podManagementPolicy", "OrderedReady")
    strategy = _sub(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        _set(_sub(strategy, "rollingUpdate"), "partition", 0)
    _set(spec, "revisionHistoryLimit", 10)
    retention = _sub(spec, "persistentVolumeClaimRetentionPolicy")
    _set(retention, "whenDeleted", "Retain")
    _set(retention, "whenScaled", "Retain")


def _daemonset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    pod_template(_sub(spec, "template"))
    strategy = _sub(spec, "updateStrategy")
    _set(strategy, "type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _sub(strategy, "rollingUpdate")
        _set(rolling, "maxUnavailable", 1)
        _set(rolling, "maxSurge", 0)
    _set(spec, "revisionHistoryLimit", 10)


def _replicaset(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "replicas", 1)
    pod_template(_sub(spec, "template"))


def _job_spec(spec: Obj) -> None:
    _set(spec, "parallelism", 1)
    _set(spec, "completions", 1)
    _set(spec, "backoffLimit", 6)
    _set(spec, "completionMode", "NonIndexed")
    _set(spec, "suspend", False)
    _set(spec, "podReplacementPolicy", "TerminatingOrFailed")
    pod_template(_sub(spec, "template"))


def _job(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _job_spec(spec)
    uid = obj.get("metadata", {}).get("uid", "")
    name = obj.get("metadata", {}).get("name", "")
    if not spec.get("manualSelector") and uid:
        # The batch strategy generates a selector on the job's uid (pkg/registry/batch/job).
        labels = {"batch.kubernetes.io/controller-uid": uid}
        _set(spec, "selector", {"matchLabels": dict(labels)})
        meta = _sub(_sub(spec, "template"), "metadata")
        template_labels = _sub(meta, "labels")
        for key, value in {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }.items():
            _set(template_labels, key, value)


def _cronjob(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "concurrencyPolicy", "Allow")
    _set(spec, "suspend", False)
    template = _sub(spec, "jobTemplate")
    _set(template, "metadata", {})
    pod_template(_sub(_sub(template, "spec"), "template"))
    _set(spec, "successfulJobsHistoryLimit", 3)
    _set(spec, "failedJobsHistoryLimit", 1)


def _service(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    kind = spec.get("type") or "ClusterIP"
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            _set(port, "protocol", "TCP")
            if kind != "ExternalName":
                # Zero and "" count as unset (SetDefaults_Service): a protobuf body always
                # carries targetPort, as IntOrString is no pointer.
                if port.get("targetPort") in (0, ""):
                    del port["targetPort"]
                _set(port, "targetPort", port.get("port"))
    _set(spec, "type", "ClusterIP")
    _set(spec, "sessionAffinity", "None")
    if kind != "ExternalName":
        _set(spec, "ipFamilies", ["IPv4"])
        _set(spec, "ipFamilyPolicy", "SingleStack")
        _set(spec, "internalTrafficPolicy", "Cluster")
    if kind in ("NodePort", "LoadBalancer"):
        _set(spec, "externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        _set(spec, "allocateLoadBalancerNodePorts", True)


def _hpa(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80},
                },
            }
        ]


def _pvc(obj: Obj) -> None:
    _pvc_spec(_sub(obj, "spec"))


def _pv(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    _set(spec, "persistentVolumeReclaimPolicy", "Retain")
    _set(spec, "volumeMode", "Filesystem")


def _namespace(obj: Obj) -> None:
    meta = _sub(obj, "metadata")
    labels = _sub(meta, "labels")
    # The namespace strategy always sets this label to the namespace's own name.
    labels["kubernetes.io/metadata.name"] = meta.get("name", "")
    spec = _sub(obj, "spec")
    _set(spec, "finalizers", ["kubernetes"])


def _secret(obj: Obj) -> None:
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = _sub(obj, "data")
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
    _set(obj, "type", "Opaque")


def _network_policy(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if not spec.get("policyTypes"):
        types = ["Ingress"]
        if spec.get("egress"):
            types.append("Egress")
        spec["policyTypes"] = types
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in (rule or {}).get("ports") or []:
                if isinstance(port, dict):
                    _set(port, "protocol", "TCP")


def _crd(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    names = _sub(spec, "names")
    if names.get("kind"):
        _set(names, "listKind", f"{names['kind']}List")
    _set(_sub(spec, "conversion"), "strategy", "None")


DEFAULTERS: dict[tuple[str, str], Callable[[Obj], None]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cronjob,
    ("", "Service"): _service,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "PersistentVolume"): _pv,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("", "Pod"): lambda obj: pod_spec(_sub(obj, "spec")),
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
}

# The empty status a fresh object of each kind carries (Go zero values that are not
# omitted), as the transcripts show them.
EMPTY_STATUS: dict[tuple[str, str], Obj] = {
    ("apps", "Deployment"): {},
    ("apps", "StatefulSet"): {"replicas": 0, "availableReplicas": 0},
    ("apps", "DaemonSet"): {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
    ("apps", "ReplicaSet"): {"replicas": 0},
    ("batch", "Job"): {},
    ("batch", "CronJob"): {},
    ("", "Service"): {"loadBalancer": {}},
    ("", "PersistentVolumeClaim"): {"phase": "Pending"},
    ("", "PersistentVolume"): {"phase": "Pending"},
    ("", "Namespace"): {"phase": "Active"},
    ("", "ResourceQuota"): {},
    ("", "Pod"): {"phase": "Pending", "qosClass": "BestEffort"},
    ("autoscaling", "HorizontalPodAutoscaler"): {"desiredReplicas": 0, "currentMetrics": None},
    ("policy", "PodDisruptionBudget"): {
        "disruptionsAllowed": 0,
        "currentHealthy": 0,
        "desiredHealthy": 0,
        "expectedPods": 0,
    },
    ("networking.k8s.io", "Ingress"): {"loadBalancer": {}},
}

# Finalizers that admission plugins add on create (StorageObjectInUseProtection).
CREATE_FINALIZERS: dict[tuple[str, str], str] = {
    ("", "PersistentVolumeClaim"): "kubernetes.io/pvc-protection",
    ("", "PersistentVolume"): "kubernetes.io/pv-protection",
}


def apply_defaults(group: str, kind: str, obj: Obj) -> None:
    """Add the server defaults of ``group``/``kind`` to ``obj`` in place."""
    defaulter = DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)

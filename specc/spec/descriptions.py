"""What each spec field means, for the JSON Schemas (editor hovers) and the docs.

A field's description is, in this order: its ``Field(description=...)``; the ``#:``
comment lines right above it in its model's source (the style of these modules); else
the entry for ``Model.field`` (the model that declares it, camelCase name) in
:data:`DESCRIPTIONS` below. ``tests/test_schemas.py`` fails for a field with none of
them, so a new field arrives with its hover text.
"""

from __future__ import annotations

import functools
import inspect
import re

from pydantic import BaseModel

_FIELD_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:")


def describe(cls: type[BaseModel], name: str) -> str:
    """Return the description of field ``name`` (the Python name) of ``cls``, or ""."""
    field = cls.model_fields[name]
    if field.description:
        return field.description
    alias = field.alias or name
    for owner in _declaring(cls, name):
        text = _comments(owner).get(name) or DESCRIPTIONS.get(f"{owner.__name__}.{alias}")
        if text:
            return text
    return ""


def _declaring(cls: type[BaseModel], name: str) -> list[type[BaseModel]]:
    """Return the classes of ``cls``'s MRO that declare ``name``, nearest first."""
    return [
        k
        for k in cls.__mro__
        if isinstance(k, type)
        and issubclass(k, BaseModel)
        and name in vars(k).get("__annotations__", {})
    ]


@functools.cache
def _comments(cls: type[BaseModel]) -> dict[str, str]:
    """Return the ``#:`` comment above each field declared in ``cls``'s own source."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    out: dict[str, str] = {}
    for i, line in enumerate(lines):
        m = _FIELD_LINE.match(line)
        if not m or line.lstrip().startswith(("def ", "class ", "@")):
            continue
        doc: list[str] = []
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("#:"):
            doc.insert(0, lines[j].strip()[2:].strip())
            j -= 1
        if doc:
            out.setdefault(m.group(1), " ".join(doc))
    return out


_API_VERSION = "Always specc.dev/v1alpha1."
_APP_METADATA = "The app's name (a DNS label, unique per kind within its team) and its team."
_PLACEMENT = "Which clusters get this app; without it, every cluster."
_OVERRIDES = (
    "Partial specs of this kind per environment and per cluster, merged onto spec in the "
    "order base → environment → cluster."
)

#: ``Model.field`` (the declaring model, the camelCase name) → description.
DESCRIPTIONS: dict[str, str] = {
    # --- shared by every app kind
    "_App.apiVersion": _API_VERSION,
    "_App.metadata": _APP_METADATA,
    "_App.placement": _PLACEMENT,
    "_App.overrides": _OVERRIDES,
    "Service.kind": "Service: a stateless workload (Deployment, Service, HPA, PDB, ConfigMap).",
    "Service.spec": "The container, its scaling, exposure and configuration.",
    "StatefulService.kind": "StatefulService: ordinal members with their own volumes (StatefulSet).",
    "StatefulService.spec": "The members, their storage, upgrades and backups.",
    "CustomResource.kind": "CustomResource: one object of an operator's kind.",
    "CustomResource.spec": "The custom resource, checked against its CRD's schema.",
    "Manifests.kind": "Manifests: raw Kubernetes objects, still schema-checked and tenancy-checked.",
    "Manifests.spec": "The objects, inline or from files.",
    "MonitoringStack.kind": "MonitoringStack: a team's Prometheus and Alertmanager.",
    "MonitoringStack.spec": "The Prometheus and Alertmanager settings, scrape targets and rules.",
    "Metadata.name": "The document's name: a DNS label (lower-case letters, digits, '-'; at most 63).",
    "Metadata.labels": "Labels added to every object rendered from this document.",
    "AppMetadata.team": "The team (teams/*.yaml) that owns the app; its objects go to that team's namespace.",
    "Placement.environments": "Only clusters of these environments.",
    "Placement.clusters": "Only these clusters, by name.",
    "Placement.selector": "Only clusters whose labels (fleet.yaml) include all of these.",
    "Overrides.environments": "Partial specs by environment name.",
    "Overrides.clusters": "Partial specs by cluster name, merged after the environment's.",
    # --- the container (Service and StatefulService)
    "WorkloadSpec.image": "Container image with a tag or digest (name:1.2.3 or name@sha256:…); 'latest' is refused.",
    "WorkloadSpec.command": "Replaces the image's entrypoint.",
    "WorkloadSpec.args": "Arguments to the entrypoint.",
    "WorkloadSpec.ports": "Ports the container listens on; each becomes a port of the Service.",
    "WorkloadSpec.env": "Environment variables (values as written; numbers and booleans as their text).",
    "WorkloadSpec.secrets": "Existing Secrets to use, as environment variables or mounted files; never secret values.",
    "WorkloadSpec.config": "Files and literals that become a ConfigMap named with a hash of its content.",
    "WorkloadSpec.resources": "CPU and memory requests and limits of the container.",
    "WorkloadSpec.probes": "Readiness, liveness and startup probes.",
    "WorkloadSpec.nodeSelector": "Labels a node must carry to run the pods.",
    "WorkloadSpec.tolerations": "Taints the pods tolerate.",
    "WorkloadSpec.serviceAccountName": "ServiceAccount the pods run as (default: the namespace's default).",
    "ServiceSpec.replicas": "Fixed number of pods (default: the environment's default); excludes autoscaling.",
    "ServiceSpec.autoscaling": "Scale between bounds on CPU use (a HorizontalPodAutoscaler); excludes replicas.",
    "ServiceSpec.expose": "How the Service is reached: its type and an optional Ingress.",
    "ServiceSpec.disruptionBudget": "Pods that must stay up during voluntary disruptions (a PodDisruptionBudget).",
    "StatefulServiceSpec.members": "Number of members (StatefulSet replicas), named <app>-0, <app>-1, …",
    "StatefulServiceSpec.storage": "Each member's volume (a volumeClaimTemplate).",
    "StatefulServiceSpec.podManagementPolicy": "OrderedReady starts and stops members one at a time; Parallel all at once.",
    "StatefulServiceSpec.backup": "A CronJob that runs a backup command on a schedule.",
    "Autoscaling.minReplicas": "Fewest pods the autoscaler keeps.",
    "Autoscaling.maxReplicas": "Most pods the autoscaler makes.",
    "Autoscaling.targetCPUUtilization": "Average CPU use, in percent of the request, the autoscaler aims at.",
    "Config.mountPath": "Folder the config files are mounted at.",
    "Ingress.host": "Host name the Ingress answers for.",
    "Ingress.path": "Path prefix routed to the Service.",
    "Ingress.className": "IngressClass that serves it.",
    "Ingress.tlsSecret": "Secret holding the TLS certificate for the host.",
    "Expose.type": "Kubernetes Service type.",
    "Expose.ingress": "An Ingress in front of the Service's first port.",
    "DisruptionBudget.minAvailable": "Pods (a count or a percentage like '50%') that must stay available.",
    "DisruptionBudget.maxUnavailable": "Pods (a count or a percentage) that may be unavailable at once.",
    "Storage.size": "Size of each member's volume.",
    "Storage.mountPath": "Where the volume is mounted in the container.",
    "Storage.storageClassName": "StorageClass of the volumes (default: the cluster's default).",
    "Storage.accessMode": "How the volume may be mounted.",
    "Storage.whenDeleted": "Whether the volumes are kept or deleted when the StatefulSet is deleted.",
    "Storage.whenScaled": "Whether a removed member's volume is kept or deleted on scale-down.",
    "Backup.schedule": "Cron schedule (5 fields, e.g. '0 3 * * *', or @daily).",
    "Backup.image": "Image of the backup job, with a tag or digest.",
    "Backup.command": "Command the backup job runs.",
    "Backup.suspend": "Stop scheduling new backup runs.",
    "Backup.successfulJobsHistoryLimit": "Finished backup jobs kept.",
    "Port.name": "Port name (at most 15 lower-case letters, digits, '-'); probes and monitors refer to it.",
    "Port.port": "Port of the Service.",
    "Port.targetPort": "Port the container listens on (default: port).",
    "Port.protocol": "Transport protocol.",
    "Probe.port": "Port to probe, by number or name (default: the first port).",
    "Probe.path": "HTTP path to GET; without path and command the probe opens a TCP connection.",
    "Probe.command": "Command run in the container; exit 0 is healthy.",
    "Probe.initialDelaySeconds": "Seconds after start before the first probe.",
    "Probe.periodSeconds": "Seconds between probes.",
    "Probe.timeoutSeconds": "Seconds a probe may take.",
    "Probe.failureThreshold": "Failed probes in a row that count as a failure.",
    "Probes.readiness": "Whether the pod gets traffic.",
    "Probes.liveness": "Whether the container is restarted.",
    "Probes.startup": "Holds off the other probes until the container has started.",
    "Resources.requests": "What the scheduler reserves for the container.",
    "Resources.limits": "What the container may use at most.",
    "ResourceList.cpu": "CPU, in cores (0.5, 500m).",
    "ResourceList.memory": "Memory (256Mi, 1Gi).",
    "ResourceList.ephemeral-storage": "Local scratch disk (1Gi).",
    "SecretRef.secret": "Name of an existing Secret in the team's namespace.",
    "SecretRef.key": "Key of the Secret (needed with env; with mountPath only that key is mounted).",
    "SecretRef.env": "Environment variable that gets the key's value.",
    "SecretRef.mountPath": "Folder the Secret's keys are mounted at, as files.",
    "Toleration.key": "Taint key (empty with Exists: every taint).",
    "Toleration.operator": "Exists matches any value; Equal needs value.",
    "Toleration.value": "Taint value to match.",
    "Toleration.effect": "Taint effect to match (empty: all).",
    "Toleration.tolerationSeconds": "Seconds a NoExecute taint is tolerated before eviction.",
    # --- CustomResource and Manifests
    "CustomResourceSpec.apiVersion": "The custom resource's apiVersion (group/version), as its CRD serves it.",
    "CustomResourceSpec.kind": "The custom resource's kind.",
    "CustomResourceSpec.spec": "The resource's spec, checked against the CRD's schema.",
    "ManifestsSpec.objects": "Kubernetes objects, each with apiVersion, kind and metadata.name.",
    # --- Fleet
    "Fleet.apiVersion": _API_VERSION,
    "Fleet.kind": "Fleet: the clusters and environments (fleet.yaml, one per repository).",
    "Fleet.metadata": "The fleet's name (recorded on each cluster's inventory).",
    "Fleet.spec": "Environments, clusters and the prune budget.",
    "FleetSpec.environments": "Environments in promotion order (e.g. dev, staging, prod), with their defaults.",
    "FleetSpec.clusters": "The clusters specc renders for and syncs.",
    "FleetSpec.prune": "How much one sync may delete.",
    "Environment.name": "Environment name (a DNS label); clusters and overrides refer to it.",
    "Environment.defaults": "Defaults for the apps on this environment's clusters.",
    "EnvironmentDefaults.replicas": "Replicas of a Service that sets neither replicas nor autoscaling.",
    "EnvironmentDefaults.resources": "Resources of a container that sets none.",
    "Cluster.name": "Cluster name (a DNS label), as the commands' --cluster names it.",
    "Cluster.environment": "The environment this cluster belongs to.",
    "Cluster.kubernetesVersion": "Kubernetes minor version (e.g. '1.33') objects are checked against.",
    "Cluster.labels": "Labels app placements select on (region, tier, …).",
    "Cluster.connection": "How commands reach the cluster by default.",
    "Connection.context": "Kubeconfig context of the cluster.",
    "Connection.kubeconfig": "Kubeconfig file, relative to the fleet; used only with --use-fleet-kubeconfig.",
    "Connection.inCluster": "In a pod, use its service account.",
    # --- Team
    "Team.apiVersion": _API_VERSION,
    "Team.kind": "Team: a namespace and who may do what in it.",
    "Team.metadata": "The team's name, as apps' metadata.team names it.",
    "Team.spec": "Namespace, owners, quota, limits, network policy and access.",
    "TeamSpec.namespace": "The team's namespace (default: the team's name); every app of the team goes there.",
    "TeamSpec.owners": "Who owns the team (names or e-mail addresses), recorded as an annotation.",
    "TeamSpec.quota": "A ResourceQuota of the namespace.",
    "TeamSpec.limits": "A LimitRange: default and largest container resources.",
    "TeamSpec.network": "The default-deny NetworkPolicy and what it lets in.",
    "TeamSpec.access": "RoleBindings of groups, users or service accounts to built-in roles in the namespace.",
    "Quota.cpu": "Total CPU requests of the namespace.",
    "Quota.memory": "Total memory requests of the namespace.",
    "Quota.limitsCpu": "Total CPU limits of the namespace.",
    "Quota.limitsMemory": "Total memory limits of the namespace.",
    "Quota.storage": "Total storage requested by volume claims.",
    "Quota.pods": "Most pods in the namespace.",
    "LimitDefaults.defaultRequest": "Requests of a container that sets none.",
    "LimitDefaults.default": "Limits of a container that sets none.",
    "LimitDefaults.max": "Largest limits a container may set.",
    "Network.allowSameNamespace": "Let pods of the namespace reach each other.",
    "Network.allowFrom": "Named sources outside the namespace that may connect.",
    "AllowedSource.name": "A name for this source (for reviews and reports).",
    "AllowedSource.namespaceSelector": "Namespaces the traffic may come from, by label.",
    "AllowedSource.podSelector": "Pods the traffic may come from, by label.",
    "AllowedSource.ports": "Only these ports (default: all).",
    "AllowedSource.ipBlock": "Addresses outside the cluster (a CIDR, with exceptions); not with selectors.",
    "Access.role": "Built-in ClusterRole granted in the namespace.",
    "Access.group": "A group of the cluster's authentication.",
    "Access.user": "A user of the cluster's authentication.",
    "Access.serviceAccount": "A ServiceAccount: name (in the team's namespace) or namespace/name.",
    # --- MonitoringStack
    "MonitoringStackSpec.prometheus": "The Prometheus servers.",
    "MonitoringStackSpec.alertmanager": "The Alertmanager cluster and its receivers.",
    "MonitoringStackSpec.scrape": "What Prometheus scrapes.",
    "MonitoringStackSpec.rules": "Alerting and recording rules.",
    "MonitoringStackSpec.nodeSelector": "Labels a node must carry to run Prometheus and Alertmanager.",
    "MonitoringStackSpec.tolerations": "Taints Prometheus and Alertmanager tolerate.",
    "PrometheusSettings.replicas": "Prometheus servers scraping the same targets (2: an HA pair).",
    "PrometheusSettings.storage": "Each server's volume; retentionSize is derived from its size.",
    "PrometheusSettings.cpu": "CPU request of each server.",
    "PrometheusSettings.scrapeInterval": "How often targets are scraped (a Prometheus duration such as 30s).",
    "PrometheusSettings.evaluationInterval": "How often rules are evaluated.",
    "AlertmanagerSettings.replicas": "Alertmanagers, gossiping so that each alert is sent once.",
    "AlertmanagerSettings.retention": "How long silences and notification state are kept.",
    "AlertmanagerSettings.storage": "Each Alertmanager's volume (default: none).",
    "AlertmanagerSettings.memory": "Memory request and limit of each Alertmanager.",
    "AlertmanagerSettings.receivers": "Where alerts go: Slack, PagerDuty or a webhook, by Secret reference.",
    "AlertmanagerSettings.defaultReceiver": "Receiver of alerts no match catches (default: the first).",
    "AlertmanagerSettings.groupBy": "Labels alerts are grouped by into one notification.",
    "Receiver.name": "Receiver name (a DNS label).",
    "Receiver.slack": "Send to a Slack webhook.",
    "Receiver.pagerduty": "Send to PagerDuty (Events API v2).",
    "Receiver.webhook": "POST to a URL.",
    "Receiver.sendResolved": "Also notify when an alert resolves.",
    "SlackReceiver.channel": "Channel to post to (default: the webhook's).",
    "SecretKeyRef.secret": "Name of an existing Secret in the team's namespace.",
    "SecretKeyRef.key": "Key of that Secret.",
    "Volume.size": "Size of the volume.",
    "Volume.storageClassName": "StorageClass of the volume (default: the cluster's default).",
    "Scrape.services": "Services to scrape, by label (each becomes a ServiceMonitor).",
    "Scrape.pods": "Pods to scrape, by label (each becomes a PodMonitor).",
    "ScrapeTarget.name": "Target name (a DNS label), part of the monitor's name.",
    "ScrapeTarget.selector": "Labels the Services or pods must carry.",
    "ScrapeTarget.port": "Port name to scrape.",
    "ScrapeTarget.path": "HTTP path of the metrics.",
    "ScrapeTarget.interval": "Scrape interval of this target (default: the stack's).",
    "RuleGroup.name": "Group name, unique in the stack.",
    "RuleGroup.query_offset": "How far back the group's queries look (a Prometheus duration).",
    "RuleGroup.rules": "The group's rules, evaluated in order.",
    "Rule.record": "Name of the series a recording rule writes.",
    "Rule.expr": "The PromQL expression, checked as Prometheus 3 parses it.",
    "Rule.for": "How long the condition must hold before the alert fires.",
    "Rule.keep_firing_for": "How long the alert keeps firing after the condition stops.",
    "Rule.labels": "Labels added to the alert or the recorded series.",
    "Rule.annotations": "Annotations of the alert (Go templates such as {{ $labels.pod }}).",
}

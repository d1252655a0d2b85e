"""Renderer of ``MonitoringStack``: prometheus-operator custom resources and what they need.

The operator (https://prometheus-operator.dev) runs the StatefulSets; specc declares
``Prometheus``, ``Alertmanager``, ``AlertmanagerConfig``, ``PrometheusRule``,
``ServiceMonitor`` and ``PodMonitor`` objects, the ServiceAccount and namespaced RBAC
Prometheus discovers its targets with, a Service in front of this stack's
Alertmanagers, and PodDisruptionBudgets for both HA components. Their schemas ship
with specc (``specc/data/crds``: the upstream CRDs as JSON, see :func:`operator_crds`)
and every CR is checked against them like any other custom resource.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc import DATA
from specc.compile.meta import AppContext, make
from specc.compile.workload import pos
from specc.load import SourceMap
from specc.objects import DesiredObject
from specc.quantity import parse_quantity
from specc.spec.apps import App, Service, StatefulService
from specc.spec.monitoring import MonitoringStackSpec, Receiver, ScrapeTarget

if TYPE_CHECKING:
    from specc.check.crd import LazyCrd

API = "monitoring.coreos.com/v1"
API_ALPHA = "monitoring.coreos.com/v1alpha1"
#: Label on every monitor and rule object of a stack; its Prometheus selects by it.
STACK_LABEL = "specc.dev/monitoring-stack"
#: Share of the Prometheus volume that samples may fill (retentionSize). The rest is
#: headroom for the WAL and for compaction, which writes a block before deleting the
#: ones it merges; a full volume stops ingestion altogether.
RETENTION_SHARE = Fraction(85, 100)

_BYTE_UNITS = (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10))


@dataclass(frozen=True)
class MetricsPorts:
    """An app of the team whose spec marks ports as metrics, as it renders on a cluster."""

    app: str
    ports: tuple[str, ...]
    #: The headless Service a StatefulService also gets; it selects the same pods.
    headless: str | None = None


def metrics_ports(apps: Iterable[App]) -> list[MetricsPorts]:
    """Return the apps among ``apps`` with ports marked ``metrics: true``, by name."""
    out = []
    for app in apps:
        if not isinstance(app, Service | StatefulService):
            continue
        ports = tuple(p.name for p in app.spec.ports if p.metrics)
        if ports:
            name = app.metadata.name
            headless = f"{name}-headless" if isinstance(app, StatefulService) else None
            out.append(MetricsPorts(name, ports, headless))
    return sorted(out, key=lambda m: m.app)


def operator_crds() -> list[dict[str, Any]]:
    """Return the prometheus-operator CRDs shipped with specc, whole (package data)."""
    return [_load_crd(entry["file"]) for entry in _crd_index()]


def operator_crd_stubs() -> list[dict[str, Any]]:
    """Return the shipped CRDs without their schemas: names, group, kind, scope, versions.

    What scope, RBAC and kind lookups need, read from a 2 KB index; the schemas are read
    only when a resource of their kinds is checked (:func:`lazy_operator_crds`).
    """
    return [_stub(entry) for entry in _crd_index()]


def lazy_operator_crds() -> list[LazyCrd]:
    """Return the shipped CRDs for the check stage, each schema read on first use.

    The check only reads them, so they share the one parsed copy (no deep copy).
    """
    from specc.cachedir import file_fingerprint
    from specc.check.crd import LazyCrd

    return [
        LazyCrd(
            _stub(entry),
            functools.partial(_load_crd_cached, entry["file"]),
            file_fingerprint(str(_crd_dir() / entry["file"])),
        )
        for entry in _crd_index()
    ]


def _stub(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": entry["name"]},
        "spec": {
            "group": entry["group"],
            "names": {"kind": entry["kind"], "plural": entry["plural"]},
            "scope": entry["scope"],
            "versions": [dict(v) for v in entry["versions"]],
        },
    }


def _crd_dir() -> Path:
    return DATA / "crds"


@functools.cache
def _crd_index() -> tuple[dict[str, Any], ...]:
    text = (_crd_dir() / "index.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["crds"])


def _load_crd(file: str) -> dict[str, Any]:
    # A fresh copy each time: callers may keep and change what they get.
    return copy.deepcopy(_load_crd_cached(file))


@functools.cache
def _load_crd_cached(file: str) -> dict[str, Any]:
    text = (_crd_dir() / file).read_text(encoding="utf-8")
    crd: dict[str, Any] = json.loads(text)["crd"]
    return crd


def retention_size(volume: str) -> str:
    """Return the retentionSize that leaves headroom on a volume of ``volume`` bytes.

    In Prometheus' byte units (``42GiB``), the largest unit that keeps it whole.
    """
    limit = int(parse_quantity(volume).value * RETENTION_SHARE)
    for unit, shift in _BYTE_UNITS:
        if limit >= 1 << shift and limit % (1 << shift) == 0:
            return f"{limit >> shift}{unit}"
    mib = limit >> 20
    return f"{mib}MiB" if mib else f"{limit}B"


def render_monitoring_stack(
    ctx: AppContext,
    spec: MonitoringStackSpec,
    source: SourceMap,
    cluster: str,
    metrics_ports: list[MetricsPorts],
) -> list[DesiredObject]:
    """Return a team's monitoring stack on ``cluster``.

    ``metrics_ports`` lists the team's apps on this cluster with ports marked
    ``metrics: true``; with ``scrape.appPorts`` one ServiceMonitor scrapes them all.
    """
    name = ctx.name
    stack = dataclasses.replace(ctx, extra_labels=(*ctx.extra_labels, (STACK_LABEL, name)))
    out: list[DesiredObject] = []
    prom_pods = {"app.kubernetes.io/name": "prometheus", "prometheus": name}
    am_pods = {"app.kubernetes.io/name": "alertmanager", "alertmanager": name}
    account = f"{name}-prometheus"
    am_service = f"{name}-alertmanager"
    placement: dict[str, Any] = {}
    if spec.node_selector:
        placement["nodeSelector"] = dict(sorted(spec.node_selector.items()))
    if spec.tolerations:
        placement["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in spec.tolerations
        ]
    # The operator's pods run as this user; fsGroup makes the volume writable to it.
    security = {"fsGroup": 2000, "runAsNonRoot": True, "runAsUser": 1000}

    # Discovery of the team's targets needs to read Services, Endpoints and Pods in
    # its own namespace only: a Role, not a ClusterRole.
    p = spec.prometheus
    where = pos(source, "prometheus")
    out.append(make(stack, "v1", "ServiceAccount", account, where, {}))
    read = ["get", "list", "watch"]
    out.append(
        make(
            stack,
            "rbac.authorization.k8s.io/v1",
            "Role",
            account,
            where,
            {
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "pods", "services"],
                        "verbs": read,
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": read,
                    },
                ]
            },
        )
    )
    out.append(
        make(
            stack,
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            account,
            where,
            {
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": account,
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": account, "namespace": ctx.namespace}
                ],
            },
        )
    )

    volume: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": p.storage.size}},
    }
    if p.storage.storage_class_name:
        volume["storageClassName"] = p.storage.storage_class_name
    requests = {"memory": p.memory} | ({"cpu": p.cpu} if p.cpu else {})
    prom: dict[str, Any] = {
        "affinity": _spread(prom_pods),
        "alerting": {
            "alertmanagers": [
                {"apiVersion": "v2", "name": am_service, "namespace": ctx.namespace, "port": "web"}
            ]
        },
        "evaluationInterval": p.evaluation_interval,
        "externalLabels": dict(
            sorted({"cluster": cluster, "team": ctx.team, **p.external_labels}.items())
        ),
        **placement,
        # Unset namespace selectors: monitors and rules of the stack's own namespace only.
        "podMonitorSelector": _own(name),
        "replicas": p.replicas,
        "resources": {"limits": {"memory": p.memory}, "requests": dict(sorted(requests.items()))},
        "retention": p.retention,
        "retentionSize": retention_size(p.storage.size),
        "ruleSelector": _own(name),
        "scrapeInterval": p.scrape_interval,
        "securityContext": dict(security),
        "serviceAccountName": account,
        "serviceMonitorSelector": _own(name),
        "storage": {"volumeClaimTemplate": {"spec": volume}},
        "walCompression": True,
    }
    out.append(make(stack, API, "Prometheus", name, where, {"spec": dict(sorted(prom.items()))}))
    if p.replicas > 1:
        out.append(
            _pdb(stack, f"{name}-prometheus", prom_pods, pos(source, "prometheus", "replicas"))
        )

    a = spec.alertmanager
    where = pos(source, "alertmanager")
    am: dict[str, Any] = {
        "affinity": _spread(am_pods),
        **placement,
        "replicas": a.replicas,
        "resources": {"limits": {"memory": a.memory}, "requests": {"memory": a.memory}},
        "retention": a.retention,
        "securityContext": dict(security),
    }
    if a.storage is not None:
        am_volume: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": a.storage.size}},
        }
        if a.storage.storage_class_name:
            am_volume["storageClassName"] = a.storage.storage_class_name
        am["storage"] = {"volumeClaimTemplate": {"spec": am_volume}}
    if a.receivers:
        # The stack's AlertmanagerConfig becomes the whole configuration: no namespace
        # matcher is added to its routes, so alerts aggregated away from their
        # namespace label still reach a receiver.
        am["alertmanagerConfiguration"] = {"name": name}
        out.append(_alertmanager_config(stack, name, spec, source))
    out.append(make(stack, API, "Alertmanager", name, where, {"spec": dict(sorted(am.items()))}))
    # The operator's alertmanager-operated Service spans every Alertmanager of the
    # namespace; this one reaches this stack's only.
    out.append(
        make(
            stack,
            "v1",
            "Service",
            am_service,
            where,
            {
                "spec": {
                    "ports": [
                        {"name": "web", "port": 9093, "protocol": "TCP", "targetPort": "web"}
                    ],
                    "selector": am_pods,
                }
            },
        )
    )
    if a.replicas > 1:
        out.append(_pdb(stack, am_service, am_pods, pos(source, "alertmanager", "replicas")))

    if spec.rules.groups:
        out.append(_prometheus_rule(stack, name, spec, source))

    scrape = spec.scrape
    scraped = [m for m in metrics_ports if m.ports]
    if scrape.app_ports and scraped:
        out.append(_app_monitor(stack, f"{name}-apps", scraped, source))
    for i, t in enumerate(scrape.services):
        out.append(
            _monitor(
                stack, "ServiceMonitor", f"{name}-{t.name}", t, pos(source, "scrape", "services", i)
            )
        )
    for i, t in enumerate(scrape.pods):
        out.append(
            _monitor(stack, "PodMonitor", f"{name}-{t.name}", t, pos(source, "scrape", "pods", i))
        )
    return out


def _own(stack: str) -> dict[str, Any]:
    # A fresh dict per use: a shared one would be written as a YAML alias.
    return {"matchLabels": {STACK_LABEL: stack}}


def _spread(pods: dict[str, str]) -> dict[str, Any]:
    # Preferred, not required: a small cluster still runs every replica, and a
    # larger one keeps a node failure from taking the whole component down.
    return {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": pods},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                    "weight": 100,
                }
            ]
        }
    }


def _pdb(ctx: AppContext, name: str, pods: dict[str, str], where: Any) -> DesiredObject:
    return make(
        ctx,
        "policy/v1",
        "PodDisruptionBudget",
        name,
        where,
        {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": pods}}},
    )


def _prometheus_rule(
    ctx: AppContext, name: str, spec: MonitoringStackSpec, source: SourceMap
) -> DesiredObject:
    groups = []
    for g in spec.rules.groups:
        group: dict[str, Any] = {"name": g.name}
        if g.interval:
            group["interval"] = g.interval
        if g.labels:
            group["labels"] = dict(sorted(g.labels.items()))
        if g.limit is not None:
            group["limit"] = g.limit
        if g.partial_response_strategy is not None:
            group["partial_response_strategy"] = g.partial_response_strategy
        if g.query_offset:
            group["query_offset"] = g.query_offset
        rules = []
        for r in g.rules:
            rule: dict[str, Any] = {"alert": r.alert} if r.alert else {"record": r.record}
            if r.annotations:
                rule["annotations"] = dict(sorted(r.annotations.items()))
            rule["expr"] = r.expr.strip()
            if r.for_:
                rule["for"] = r.for_
            if r.keep_firing_for:
                rule["keep_firing_for"] = r.keep_firing_for
            if r.labels:
                rule["labels"] = dict(sorted(r.labels.items()))
            rules.append(rule)
        group["rules"] = rules
        groups.append(group)
    return make(
        ctx, API, "PrometheusRule", name, pos(source, "rules"), {"spec": {"groups": groups}}
    )


def _receiver(r: Receiver) -> dict[str, Any]:
    out: dict[str, Any] = {"name": r.name}
    if r.slack is not None:
        slack: dict[str, Any] = {"apiURL": {"key": r.slack.url.key, "name": r.slack.url.secret}}
        if r.slack.channel:
            slack["channel"] = r.slack.channel
        slack["sendResolved"] = r.send_resolved
        out["slackConfigs"] = [slack]
    elif r.pagerduty is not None:
        key = r.pagerduty.routing_key
        out["pagerdutyConfigs"] = [
            {"routingKey": {"key": key.key, "name": key.secret}, "sendResolved": r.send_resolved}
        ]
    elif r.webhook is not None:
        url = r.webhook.url
        out["webhookConfigs"] = [
            {"sendResolved": r.send_resolved, "urlSecret": {"key": url.key, "name": url.secret}}
        ]
    return out


def _alertmanager_config(
    ctx: AppContext, name: str, spec: MonitoringStackSpec, source: SourceMap
) -> DesiredObject:
    a = spec.alertmanager
    default = a.default_receiver or a.receivers[0].name
    route: dict[str, Any] = {"groupBy": list(a.group_by), "receiver": default}
    routes = [
        {
            "matchers": [
                {"matchType": "=", "name": k, "value": v} for k, v in sorted(r.match.items())
            ],
            "receiver": r.name,
        }
        for r in a.receivers
        if r.match
    ]
    if routes:
        route["routes"] = routes
    body = {"spec": {"receivers": [_receiver(r) for r in a.receivers], "route": route}}
    return make(
        ctx, API_ALPHA, "AlertmanagerConfig", name, pos(source, "alertmanager", "receivers"), body
    )


def _app_monitor(
    ctx: AppContext, name: str, apps: list[MetricsPorts], source: SourceMap
) -> DesiredObject:
    """Return the ServiceMonitor of the ports the team's app specs mark as metrics.

    Every app with ports gets a Service carrying its own labels and its ports by name
    (see :mod:`specc.compile.service`), so the monitor selects those Services by team
    and app name and scrapes each named port. A StatefulService also gets a headless
    Service with the same labels and ports; its targets are dropped by Service name,
    or every member would be scraped twice.
    """
    ports = sorted({p for m in apps for p in m.ports})
    headless = sorted(m.headless for m in apps if m.headless)
    endpoint_extra: dict[str, Any] = {}
    if headless:
        endpoint_extra["relabelings"] = [
            {
                "action": "drop",
                "regex": "|".join(headless),
                "sourceLabels": ["__meta_kubernetes_service_name"],
            }
        ]
    spec = {
        "endpoints": [{"path": "/metrics", "port": p, **endpoint_extra} for p in ports],
        "selector": {
            "matchExpressions": [
                {
                    "key": "app.kubernetes.io/name",
                    "operator": "In",
                    "values": sorted(m.app for m in apps),
                }
            ],
            "matchLabels": {"app.kubernetes.io/part-of": ctx.team},
        },
    }
    return make(ctx, API, "ServiceMonitor", name, pos(source, "scrape"), {"spec": spec})


def _monitor(
    ctx: AppContext, kind: str, name: str, target: ScrapeTarget, where: Any
) -> DesiredObject:
    endpoint: dict[str, Any] = {"path": target.path, "port": target.port}
    if target.interval:
        endpoint["interval"] = target.interval
    key = "endpoints" if kind == "ServiceMonitor" else "podMetricsEndpoints"
    spec = {key: [endpoint], "selector": {"matchLabels": dict(sorted(target.selector.items()))}}
    return make(ctx, API, kind, name, where, {"spec": spec})

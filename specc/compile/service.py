"""Renderers of the workload kinds: ``Service`` (stateless) and ``StatefulService``."""

from __future__ import annotations

from typing import Any, TypeVar

from specc.compile.backup import render_backup
from specc.compile.meta import AppContext, make
from specc.compile.workload import (
    config_map,
    container,
    pod_spec_extras,
    pos,
    scheduling,
    service_ports,
    template_locations,
)
from specc.errors import CompileError, Finding
from specc.load import SourceMap
from specc.objects import PRUNE_ANNOTATION, RECREATE_ANNOTATION, DesiredObject
from specc.spec.apps import ServiceSpec, StatefulServiceSpec
from specc.spec.fleet import EnvironmentDefaults

WorkloadT = TypeVar("WorkloadT", ServiceSpec, StatefulServiceSpec)


def _workload(
    ctx: AppContext,
    spec: WorkloadT,
    source: SourceMap,
    files: dict[str, str],
    defaults: EnvironmentDefaults,
) -> tuple[list[DesiredObject], WorkloadT, dict[str, Any], dict[str, Any]]:
    """Return what both workload kinds start from: the config ConfigMap (if any), the spec
    with environment defaults applied, the pod template and its container."""
    out: list[DesiredObject] = []
    cm = config_map(ctx, spec, files, source)
    if cm is not None:
        out.append(cm)
    if spec.resources is None and defaults.resources is not None:
        spec = spec.model_copy(update={"resources": defaults.resources})
    c, volumes = container(ctx, spec, cm.name if cm else None, source)
    pod: dict[str, Any] = {"containers": [c], **pod_spec_extras(spec)}
    if volumes:
        pod["volumes"] = volumes
    template = {"metadata": {"labels": ctx.pod_labels}, "spec": pod}
    return out, spec, template, c


def _check_names(ctx: AppContext, source: SourceMap, names: list[tuple[str, str, int]]) -> None:
    """Raise CompileError for object names the API server would refuse.

    The app name is a DNS-1123 label; names specc derives from it may not be: a Service
    name must start with a letter (RFC 1035) and a CronJob name is at most 52 characters
    (the Job names it makes get 11 more).
    """
    where = source.value(("metadata", "name"))
    findings = []
    for kind, name, limit in names:
        if len(name) > limit:
            findings.append(
                Finding(
                    where,
                    f"{kind} name {name!r} made from the app name is longer than {limit} "
                    "characters: shorten metadata.name",
                    subject=f"{kind}/{ctx.namespace}/{name}",
                )
            )
        if kind == "Service" and not name[:1].isalpha():
            findings.append(
                Finding(
                    where,
                    f"a Service name must start with a letter (RFC 1035), and {name!r} "
                    "does not: rename the app",
                    subject=f"{kind}/{ctx.namespace}/{name}",
                )
            )
    if findings:
        raise CompileError(findings)


def render_service(
    ctx: AppContext,
    spec: ServiceSpec,
    source: SourceMap,
    files: dict[str, str],
    defaults: EnvironmentDefaults,
) -> list[DesiredObject]:
    """Return the objects of a stateless service: Deployment, Service, ConfigMap, HPA, PDB, Ingress."""
    if not spec.ports and (spec.expose.ingress is not None or spec.expose.type != "ClusterIP"):
        # Without a port there is no Service to expose; dropping the exposure silently
        # would leave the author wondering why nothing answers.
        raise CompileError(
            [
                Finding(
                    source.key(("spec", "expose")),
                    "expose needs a port to route to: declare spec.ports",
                )
            ]
        )
    if spec.ports:
        _check_names(ctx, source, [("Service", ctx.name, 63)])
    out, spec, template, _ = _workload(ctx, spec, source, files, defaults)
    template["spec"].update(scheduling(spec, ctx.selector, defaults.anti_affinity))
    deploy_spec: dict[str, Any] = {}
    # Under an autoscaler the Deployment carries no replicas, so sync never fights the HPA.
    if spec.autoscaling is None:
        replicas = spec.replicas if spec.replicas is not None else defaults.replicas
        deploy_spec["replicas"] = replicas if replicas is not None else 1
    deploy_spec["selector"] = {"matchLabels": ctx.selector}
    deploy_spec["template"] = template
    deploy = make(ctx, "apps/v1", "Deployment", ctx.name, pos(source), {"spec": deploy_spec})
    deploy.locations = template_locations(("spec", "template"), source)
    out.append(deploy)

    if spec.ports:
        # The type is set even when it is the default: exposure is specc's to own, so a
        # Service switched to NodePort by hand shows as drift and is healed.
        svc: dict[str, Any] = {"type": spec.expose.type}
        svc.update({"selector": ctx.selector, "ports": service_ports(spec)})
        out.append(make(ctx, "v1", "Service", ctx.name, pos(source, "ports"), {"spec": svc}))

    if spec.autoscaling is not None:
        a = spec.autoscaling
        hpa = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": ctx.name},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": a.target_cpu_utilization,
                        },
                    },
                }
            ],
        }
        out.append(
            make(
                ctx,
                "autoscaling/v2",
                "HorizontalPodAutoscaler",
                ctx.name,
                pos(source, "autoscaling"),
                {"spec": hpa},
            )
        )

    if spec.disruption_budget is not None:
        b = spec.disruption_budget
        pdb: dict[str, Any] = {}
        if b.max_unavailable is not None:
            pdb["maxUnavailable"] = b.max_unavailable
        if b.min_available is not None:
            pdb["minAvailable"] = b.min_available
        pdb["selector"] = {"matchLabels": ctx.selector}
        out.append(
            make(
                ctx,
                "policy/v1",
                "PodDisruptionBudget",
                ctx.name,
                pos(source, "disruptionBudget"),
                {"spec": pdb},
            )
        )

    ing = spec.expose.ingress
    if ing is not None:
        ing_spec: dict[str, Any] = {}
        if ing.class_name:
            ing_spec["ingressClassName"] = ing.class_name
        ing_spec["rules"] = [
            {
                "host": ing.host,
                "http": {
                    "paths": [
                        {
                            "backend": {
                                "service": {"name": ctx.name, "port": {"name": spec.ports[0].name}}
                            },
                            "path": ing.path,
                            "pathType": "Prefix",
                        }
                    ]
                },
            }
        ]
        if ing.tls_secret:
            ing_spec["tls"] = [{"hosts": [ing.host], "secretName": ing.tls_secret}]
        out.append(
            make(
                ctx,
                "networking.k8s.io/v1",
                "Ingress",
                ctx.name,
                pos(source, "expose", "ingress"),
                {"spec": ing_spec},
            )
        )
    return out


def render_stateful_service(
    ctx: AppContext,
    spec: StatefulServiceSpec,
    source: SourceMap,
    files: dict[str, str],
    defaults: EnvironmentDefaults,
) -> list[DesiredObject]:
    """Return the objects of a stateful service: StatefulSet, headless and client Services,
    PodDisruptionBudget, ConfigMap and backup CronJob."""
    names = [("Service", f"{ctx.name}-headless", 63)]
    if spec.backup is not None:
        names.append(("CronJob", f"{ctx.name}-backup", 52))
    _check_names(ctx, source, names)
    out, spec, template, c = _workload(ctx, spec, source, files, defaults)
    st = spec.storage
    c.setdefault("volumeMounts", []).insert(0, {"name": "data", "mountPath": st.mount_path})
    # Two members on one node fail together: spread them (required on request).
    template["spec"].update(scheduling(spec, ctx.selector, defaults.anti_affinity))
    headless = f"{ctx.name}-headless"
    claim_spec: dict[str, Any] = {"accessModes": [st.access_mode]}
    claim_spec["resources"] = {"requests": {"storage": st.size}}
    if st.storage_class_name:
        claim_spec["storageClassName"] = st.storage_class_name
    claim_spec["volumeMode"] = "Filesystem"
    # Claims made from this template are data: never pruned unless the spec opts in.
    claim_annotations = {PRUNE_ANNOTATION: "allow"} if spec.prune_data else {}
    claim_meta: dict[str, Any] = {"name": "data", "labels": ctx.pod_labels}
    if claim_annotations:
        claim_meta["annotations"] = claim_annotations
    sts: dict[str, Any] = {
        "persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": st.when_deleted,
            "whenScaled": st.when_scaled,
        },
        "podManagementPolicy": spec.pod_management_policy,
        "replicas": spec.members,
        "selector": {"matchLabels": ctx.selector},
        "serviceName": headless,
        "template": template,
        "updateStrategy": {
            "rollingUpdate": {"partition": spec.update_partition},
            "type": "RollingUpdate",
        },
        "volumeClaimTemplates": [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": claim_meta,
                "spec": claim_spec,
            }
        ],
    }
    opt_in = {RECREATE_ANNOTATION: "allow"} if spec.allow_recreate else None
    statefulset = make(
        ctx, "apps/v1", "StatefulSet", ctx.name, pos(source), {"spec": sts}, annotations=opt_in
    )
    statefulset.locations = template_locations(("spec", "template"), source)
    statefulset.locations[("spec", "volumeClaimTemplates")] = source.value(
        ("spec", "storage", "size")
    )
    out.append(statefulset)

    ports = service_ports(spec)
    # Stable member names (<name>-0.<name>-headless) need DNS before pods are ready.
    headless_spec: dict[str, Any] = {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": ctx.selector,
    }
    if ports:
        headless_spec["ports"] = ports
    out.append(make(ctx, "v1", "Service", headless, pos(source), {"spec": headless_spec}))
    if ports:
        out.append(
            make(
                ctx,
                "v1",
                "Service",
                ctx.name,
                pos(source, "ports"),
                {"spec": {"selector": ctx.selector, "ports": ports}},
            )
        )
    out.append(
        make(
            ctx,
            "policy/v1",
            "PodDisruptionBudget",
            ctx.name,
            pos(source, "members"),
            {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": ctx.selector}}},
        )
    )
    if spec.backup is not None:
        out.append(render_backup(ctx, spec.backup, c, source))
    return out

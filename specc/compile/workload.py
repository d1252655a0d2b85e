"""The pod template parts that Service and StatefulService share."""

from __future__ import annotations

from typing import Any

from specc.compile.meta import AppContext, content_hash, make
from specc.errors import CompileError, Finding, Position
from specc.load import SourceMap
from specc.objects import DesiredObject
from specc.spec.apps import Security, WorkloadSpec
from specc.spec.base import Probe, ResourceList, Resources


def resource_list(rl: ResourceList) -> dict[str, str]:
    out = {}
    if rl.cpu is not None:
        out["cpu"] = rl.cpu
    if rl.ephemeral_storage is not None:
        out["ephemeral-storage"] = rl.ephemeral_storage
    if rl.memory is not None:
        out["memory"] = rl.memory
    return out


def resources(res: Resources | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if res is None:
        return out
    if res.limits is not None and (limits := resource_list(res.limits)):
        out["limits"] = limits
    if res.requests is not None and (requests := resource_list(res.requests)):
        out["requests"] = requests
    return out


def probe(p: Probe, default_port: int | str | None, where: Position) -> dict[str, Any]:
    """Return the Kubernetes probe; an HTTP or TCP probe without a port uses the first port.

    Raise CompileError when it has no port to use: the API server would refuse it.
    """
    port = p.port if p.port is not None else default_port
    out: dict[str, Any]
    if p.command is None and port is None:
        raise CompileError(
            [
                Finding(
                    where,
                    "an HTTP or TCP probe needs a port: set its port, or declare spec.ports "
                    "(the probe then uses the first one)",
                )
            ]
        )
    if p.command is not None:
        out = {"exec": {"command": list(p.command)}}
    elif p.path is not None:
        out = {"httpGet": {"path": p.path, "port": port}}
    else:
        out = {"tcpSocket": {"port": port}}
    for key, value in (
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("periodSeconds", p.period_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("failureThreshold", p.failure_threshold),
    ):
        if value is not None:
            out[key] = value
    return out


def pod_security_context(sec: Security) -> dict[str, Any]:
    """Return the pod's ``securityContext``: non-root, seccomp, the user and groups given."""
    out: dict[str, Any] = {}
    if sec.fs_group is not None:
        out["fsGroup"] = sec.fs_group
    if sec.run_as_group is not None:
        out["runAsGroup"] = sec.run_as_group
    out["runAsNonRoot"] = sec.run_as_non_root
    if sec.run_as_user is not None:
        out["runAsUser"] = sec.run_as_user
    out["seccompProfile"] = {"type": sec.seccomp_profile}
    return out


def container_security_context(sec: Security) -> dict[str, Any]:
    """Return a container's ``securityContext``: every capability dropped but those added,
    no privilege escalation, the root filesystem read-only when asked."""
    caps: dict[str, Any] = {}
    if sec.add_capabilities:
        caps["add"] = sorted(set(sec.add_capabilities))
    caps["drop"] = ["ALL"]
    return {
        "allowPrivilegeEscalation": sec.allow_privilege_escalation,
        "capabilities": caps,
        "readOnlyRootFilesystem": sec.read_only_root_filesystem,
    }


def config_map(
    ctx: AppContext, spec: WorkloadSpec, files: dict[str, str], source: SourceMap
) -> DesiredObject | None:
    """Return the ConfigMap of the app's config, named with a hash of its content.

    The Deployment refers to the hashed name, so any config change rolls the pods, and
    the old ConfigMap is pruned once nothing declares it.
    """
    if spec.config is None:
        return None
    clash = sorted(set(files) & set(spec.config.literals))
    if clash:
        # One ConfigMap holds both; a literal would silently replace the file's content.
        raise CompileError(
            [
                Finding(
                    source.key(("spec", "config")),
                    f"config key(s) {clash} name both a file and a literal: rename one",
                )
            ]
        )
    data = {**files, **spec.config.literals}
    if not data:
        return None
    data = dict(sorted(data.items()))
    name = f"{ctx.name}-config-{content_hash(data)}"
    return make(
        ctx,
        "v1",
        "ConfigMap",
        name,
        source.key(("spec", "config")),
        {"immutable": True, "data": data},
    )


def container(
    ctx: AppContext, spec: WorkloadSpec, config_name: str | None, source: SourceMap
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return the app's container and the pod volumes it mounts."""
    c: dict[str, Any] = {"name": ctx.name, "image": spec.image}
    if spec.command is not None:
        c["command"] = list(spec.command)
    if spec.args is not None:
        c["args"] = list(spec.args)
    if spec.ports:
        c["ports"] = [
            {"name": p.name, "containerPort": p.target_port or p.port, "protocol": p.protocol}
            for p in spec.ports
        ]
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in spec.env.items()]
    if spec.config is not None and config_name is not None:
        env += [
            {"name": k, "valueFrom": {"configMapKeyRef": {"name": config_name, "key": k}}}
            for k in spec.config.literals
        ]
    env += [
        {"name": s.env, "valueFrom": {"secretKeyRef": {"name": s.secret, "key": s.key}}}
        for s in spec.secrets
        if s.env is not None
    ]
    if env:
        c["env"] = env
    res = resources(spec.resources)
    if res:
        c["resources"] = res
    default_port: int | str | None = spec.ports[0].name if spec.ports else None
    if spec.probes is not None:
        for key, p in (
            ("readinessProbe", spec.probes.readiness),
            ("livenessProbe", spec.probes.liveness),
            ("startupProbe", spec.probes.startup),
        ):
            if p is not None:
                where = source.value(("spec", "probes", key.removesuffix("Probe")))
                c[key] = probe(p, default_port, where)

    mounts: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    if spec.config is not None and spec.config.files and config_name is not None:
        mounts.append({"name": "config", "mountPath": spec.config.mount_path, "readOnly": True})
        volumes.append(
            {
                "name": "config",
                "configMap": {
                    "name": config_name,
                    "items": [{"key": k, "path": k} for k in sorted(spec.config.files)],
                },
            }
        )
    for i, s in enumerate(s for s in spec.secrets if s.mount_path is not None):
        vol = f"secret-{i}"
        mounts.append({"name": vol, "mountPath": s.mount_path, "readOnly": True})
        volumes.append({"name": vol, "secret": {"secretName": s.secret}})
    for v in spec.volumes:
        mounts.append({"name": v.name, "mountPath": v.mount_path})
        empty: dict[str, Any] = {}
        if v.empty_dir.medium:
            empty["medium"] = v.empty_dir.medium
        if v.empty_dir.size_limit is not None:
            empty["sizeLimit"] = v.empty_dir.size_limit
        volumes.append({"name": v.name, "emptyDir": empty})
    if mounts:
        c["volumeMounts"] = mounts
    c["securityContext"] = container_security_context(spec.security)
    return c, volumes


HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def scheduling(spec: WorkloadSpec, selector: dict[str, str], default: str | None) -> dict[str, Any]:
    """Return the pod spec's ``affinity`` and ``topologySpreadConstraints`` for the app.

    Anti-affinity is over nodes (required, preferred or none; ``default`` when the spec
    says nothing, else preferred); zone spread never blocks scheduling (ScheduleAnyway).
    """
    out: dict[str, Any] = {}
    mode = spec.anti_affinity or default or "preferred"
    term = {"labelSelector": {"matchLabels": selector}, "topologyKey": HOSTNAME}
    if mode == "required":
        rule = {"requiredDuringSchedulingIgnoredDuringExecution": [term]}
        out["affinity"] = {"podAntiAffinity": rule}
    elif mode == "preferred":
        weighted = [{"podAffinityTerm": term, "weight": 100}]
        out["affinity"] = {
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": weighted}
        }
    if spec.zone_spread:
        out["topologySpreadConstraints"] = [
            {
                "labelSelector": {"matchLabels": selector},
                "maxSkew": 1,
                "topologyKey": ZONE,
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ]
    return out


def pod_spec_extras(spec: WorkloadSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["securityContext"] = pod_security_context(spec.security)
    if spec.node_selector:
        out["nodeSelector"] = dict(sorted(spec.node_selector.items()))
    if spec.service_account_name:
        out["serviceAccountName"] = spec.service_account_name
    if spec.tolerations:
        out["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True) for t in spec.tolerations
        ]
    return out


def service_ports(spec: WorkloadSpec) -> list[dict[str, Any]]:
    # targetPort by name follows the container port even if its number changes.
    return [
        {"name": p.name, "port": p.port, "protocol": p.protocol, "targetPort": p.name}
        for p in spec.ports
    ]


def template_locations(
    template: tuple[str | int, ...], source: SourceMap, spec_path: tuple[str | int, ...] = ("spec",)
) -> dict[tuple[str | int, ...], Position]:
    """Return where the security-relevant parts of the pod template at ``template`` come
    from in the spec at ``spec_path`` (so a Pod Security finding names that line)."""
    pod = (*template, "spec")
    out = {
        (*pod, "securityContext"): source.key((*spec_path, "security")),
        (*pod, "containers", 0, "securityContext"): source.key((*spec_path, "security")),
        (*pod, "volumes"): source.key((*spec_path, "volumes")),
        (*pod, "containers", 0, "ports"): source.key((*spec_path, "ports")),
        (*pod, "containers", 0, "image"): source.value((*spec_path, "image")),
        (*pod, "containers", 0, "resources"): source.key((*spec_path, "resources")),
    }
    for probe_kind in ("readiness", "liveness", "startup"):
        where = source.value((*spec_path, "probes", probe_kind))
        out[(*pod, "containers", 0, f"{probe_kind}Probe")] = where
    return out


def pos(source: SourceMap, *loc: str | int) -> Position:
    return source.key(("spec", *loc)) if loc else source.value(())

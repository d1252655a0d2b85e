"""The app kinds: ``Service``, ``StatefulService``, ``CustomResource``, ``Manifests``
(and, from :mod:`specc.spec.monitoring`, ``MonitoringStack``)."""

import re
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from specc.spec.base import (
    AppMetadata,
    ConfigKey,
    DNSLabel,
    EnvName,
    Image,
    Overrides,
    Placement,
    Port,
    Probes,
    Quantity,
    Resources,
    SecretRef,
    SpecModel,
    StrValue,
    Toleration,
)
from specc.spec.located import Problem, raise_problems

_CRON_FIELD = re.compile(
    r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*$"
)


def _cron(value: str) -> str:
    if value.startswith("@"):
        if value not in (
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ):
            raise ValueError(f"{value!r} is not a cron schedule")
        return value
    fields = value.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"{value!r} is not a 5-field cron schedule (e.g. '0 3 * * *')")
    return value


Cron = Annotated[str, AfterValidator(_cron)]


def _check_secrets(secrets: list[SecretRef]) -> list[SecretRef]:
    problems: list[Problem] = []
    for i, s in enumerate(secrets):
        if (s.env is None) == (s.mount_path is None):
            problems.append(
                ((i,), f"secret {s.secret!r}: set exactly one of env (with key) and mountPath")
            )
        elif s.env is not None and s.key is None:
            problems.append(((i, "env"), f"secret {s.secret!r}: env {s.env!r} needs a key"))
    raise_problems(problems)
    return secrets


class Autoscaling(SpecModel):
    """Becomes a HorizontalPodAutoscaler; the Deployment then carries no replicas."""

    min_replicas: Annotated[int, Field(ge=1)]
    max_replicas: Annotated[int, Field(ge=1)]
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)] = Field(
        default=80, alias="targetCPUUtilization"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas ({self.max_replicas}) is below minReplicas ({self.min_replicas})"
            )
        return self


class Config(SpecModel):
    """Files and literals that become one ConfigMap named with a hash of its content."""

    mount_path: str = "/etc/config"
    #: ConfigMap key → file path relative to the spec file.
    files: dict[ConfigKey, str] = Field(default_factory=dict)
    #: Environment variable → literal value.
    literals: dict[EnvName, StrValue] = Field(default_factory=dict)


class Ingress(SpecModel):
    host: str
    path: str = "/"
    class_name: str | None = None
    tls_secret: str | None = None


class Expose(SpecModel):
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    ingress: Ingress | None = None


class DisruptionBudget(SpecModel):
    min_available: int | str | None = None
    max_unavailable: int | str | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("set exactly one of minAvailable and maxUnavailable")
        for v in (self.min_available, self.max_unavailable):
            if isinstance(v, str) and not re.match(r"^[0-9]+%$", v):
                raise ValueError(f"{v!r} is neither a count nor a percentage like '50%'")
        return self


_CAPABILITY = re.compile(r"^[A-Z][A-Z0-9_]*$")


def _capability(value: str) -> str:
    # Kubernetes names capabilities without the CAP_ prefix; CAP_X would be a no-op.
    if value.startswith("CAP_") or not _CAPABILITY.match(value):
        raise ValueError(
            f"{value!r} is not a capability as Kubernetes names them (e.g. NET_BIND_SERVICE, "
            "no CAP_ prefix)"
        )
    return value


Capability = Annotated[str, AfterValidator(_capability)]


class Security(SpecModel):
    """The pod's and container's security context; the defaults meet Pod Security
    "restricted", and each relaxation is checked against the namespace's level."""

    #: Refuse to start the container as root (restricted requires true).
    run_as_non_root: bool = True
    #: User the container runs as (default: the image's; must then be non-root).
    run_as_user: Annotated[int, Field(ge=0)] | None = None
    #: Primary group of the container's processes.
    run_as_group: Annotated[int, Field(ge=0)] | None = None
    #: Group that owns the pod's volumes (so a non-root user can write its data).
    fs_group: Annotated[int, Field(ge=0)] | None = None
    #: Mount the image read-only; give writable paths as emptyDir ``volumes``.
    read_only_root_filesystem: bool = False
    #: Let a process gain more privileges than its parent (restricted requires false).
    allow_privilege_escalation: bool = False
    #: Capabilities added after dropping ALL (restricted allows only NET_BIND_SERVICE).
    add_capabilities: list[Capability] = Field(default_factory=list)
    #: Seccomp profile of the pod (restricted requires RuntimeDefault).
    seccomp_profile: Literal["RuntimeDefault", "Unconfined"] = "RuntimeDefault"

    @model_validator(mode="after")
    def _root(self) -> Self:
        if self.run_as_non_root and self.run_as_user == 0:
            raise ValueError(
                "runAsUser 0 is root, which runAsNonRoot refuses: pick a non-zero user "
                "or set runAsNonRoot: false"
            )
        return self


class EmptyDir(SpecModel):
    #: Memory backs the volume with tmpfs (counted against the container's memory).
    medium: Literal["", "Memory"] = ""
    #: Most the volume may hold before the pod is evicted.
    size_limit: Quantity | None = None


class PodVolume(SpecModel):
    """A scratch volume (emptyDir) mounted into the container, e.g. /tmp under a
    read-only root filesystem."""

    #: Volume name (data, config and secret-N are specc's own).
    name: DNSLabel
    #: Where the volume is mounted in the container.
    mount_path: str
    #: The emptyDir's settings (default: node disk, no size limit).
    empty_dir: EmptyDir = Field(default_factory=EmptyDir)


AntiAffinity = Literal["required", "preferred", "none"]

_RESERVED_VOLUME = re.compile(r"^(data|config|secret-[0-9]+)$")


class WorkloadSpec(SpecModel):
    """What stateless and stateful services share: the container and its surroundings."""

    image: Image
    command: list[str] | None = None
    args: list[str] | None = None
    ports: list[Port] = Field(default_factory=list)
    env: dict[EnvName, StrValue] = Field(default_factory=dict)
    secrets: list[SecretRef] = Field(default_factory=list)
    config: Config | None = None
    resources: Resources | None = None
    probes: Probes | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] = Field(default_factory=list)
    service_account_name: DNSLabel | None = None
    #: Security context; the default meets Pod Security "restricted".
    security: Security = Field(default_factory=Security)
    #: Extra scratch volumes (emptyDir) and where the container mounts them.
    volumes: list[PodVolume] = Field(default_factory=list)
    #: Keep pods on different nodes: required (never two on one node: a pod stays Pending
    #: rather), preferred (spread when the scheduler can) or none. Default: the
    #: environment's antiAffinity, else preferred.
    anti_affinity: AntiAffinity | None = None
    #: Spread pods across zones (topology.kubernetes.io/zone), as far as the zones allow.
    zone_spread: bool = False

    @field_validator("volumes")
    @classmethod
    def _volume_names(cls, volumes: list[PodVolume]) -> list[PodVolume]:
        problems: list[Problem] = []
        names: dict[str, int] = {}
        for i, v in enumerate(volumes):
            if _RESERVED_VOLUME.match(v.name):
                problems.append(
                    ((i, "name"), f"volume name {v.name!r} is specc's own (data, config, secret-N)")
                )
            elif v.name in names:
                problems.append(
                    (
                        (i, "name"),
                        f"volume name {v.name!r} is used twice (also volumes[{names[v.name]}])",
                    )
                )
            names.setdefault(v.name, i)
        raise_problems(problems)
        return volumes

    # Field validators rather than one model validator: they run even when another
    # field is invalid, and their errors point at the field. Each reports every problem
    # it finds, at the item it concerns (see specc.spec.located).
    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[Port]) -> list[Port]:
        names: dict[str, int] = {}
        numbers: dict[tuple[int, str], int] = {}
        problems: list[Problem] = []
        for i, p in enumerate(ports):
            if p.name in names:
                problems.append(
                    (
                        (i, "name"),
                        f"port name {p.name!r} is used twice (also ports[{names[p.name]}])",
                    )
                )
            if (p.port, p.protocol) in numbers:
                first = numbers[(p.port, p.protocol)]
                problems.append(
                    ((i, "port"), f"port {p.port}/{p.protocol} is used twice (also ports[{first}])")
                )
            names.setdefault(p.name, i)
            numbers.setdefault((p.port, p.protocol), i)
        raise_problems(problems)
        return ports

    @field_validator("secrets")
    @classmethod
    def _secret_targets(cls, secrets: list[SecretRef]) -> list[SecretRef]:
        return _check_secrets(secrets)

    @field_validator("probes")
    @classmethod
    def _probe_ports(cls, probes: Probes | None, info: ValidationInfo) -> Probes | None:
        # A probe on a port the container does not declare never succeeds: the pod never
        # becomes ready (readiness) or is restarted for ever (liveness).
        ports: list[Port] | None = info.data.get("ports")
        if probes is None or ports is None:
            return probes
        names = [p.name for p in ports]
        numbers = {p.target_port or p.port: p for p in ports}
        problems: list[Problem] = []
        for kind in ("readiness", "liveness", "startup"):
            probe = getattr(probes, kind)
            if probe is None or probe.port is None or probe.command is not None:
                continue
            if isinstance(probe.port, str) and probe.port not in names:
                problems.append(
                    (
                        (kind, "port"),
                        f"{kind} probe port {probe.port!r} is not a declared port"
                        + (f" (ports: {', '.join(names)})" if names else " (no ports declared)"),
                    )
                )
            elif isinstance(probe.port, int) and probe.port not in numbers:
                hint = next((p for p in ports if p.port == probe.port and p.target_port), None)
                why = (
                    f": {probe.port} is the Service port of {hint.name!r}; the container "
                    f"listens on {hint.target_port}"
                    if hint is not None
                    else ""
                )
                problems.append(
                    (
                        (kind, "port"),
                        f"{kind} probe port {probe.port} is not a container port the spec "
                        f"declares{why}; name the port (e.g. port: {names[0]})"
                        if names
                        else f"{kind} probe port {probe.port} is not a declared port (no ports declared)",
                    )
                )
        raise_problems(problems)
        return probes

    @field_validator("config")
    @classmethod
    def _literals_not_in_env(cls, config: Config | None, info: ValidationInfo) -> Config | None:
        env = info.data.get("env") or {}
        if config is not None:
            raise_problems(
                [
                    (("literals", name), f"{name!r} is set both in env and config.literals")
                    for name in sorted(set(config.literals) & set(env))
                ]
            )
        return config


class ServiceSpec(WorkloadSpec):
    replicas: Annotated[int, Field(ge=0)] | None = None
    autoscaling: Autoscaling | None = None
    expose: Expose = Field(default_factory=Expose)
    disruption_budget: DisruptionBudget | None = None

    @field_validator("autoscaling")
    @classmethod
    def _scaling(cls, autoscaling: Autoscaling | None, info: ValidationInfo) -> Autoscaling | None:
        if autoscaling is not None and info.data.get("replicas") is not None:
            raise ValueError(
                "replicas and autoscaling exclude each other: the autoscaler owns replicas"
            )
        return autoscaling


class Storage(SpecModel):
    size: Quantity
    mount_path: str = "/data"
    storage_class_name: str | None = None
    access_mode: Literal["ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"] = "ReadWriteOnce"
    when_deleted: Literal["Retain", "Delete"] = "Retain"
    when_scaled: Literal["Retain", "Delete"] = "Retain"


class Backup(SpecModel):
    """Becomes a CronJob that runs the backup command on a schedule."""

    schedule: Cron
    image: Image
    command: Annotated[list[str], Field(min_length=1)]
    suspend: bool = False
    successful_jobs_history_limit: Annotated[int, Field(ge=0)] = 3
    #: The backup job's own requests and limits (default: none, so the namespace's
    #: LimitRange decides); never the database's.
    resources: Resources | None = None
    #: Environment variables of the backup job, added to those it inherits.
    env: dict[EnvName, StrValue] = Field(default_factory=dict)
    #: Secrets of the backup job (environment variables or mounted files).
    secrets: list[SecretRef] = Field(default_factory=list)
    #: Also pass the service's env and secret environment variables to the job (the
    #: database's credentials, typically); false gives the job only its own.
    inherit_env: bool = True
    #: Security context of the backup job (its own image: the service's user may not fit).
    security: Security = Field(default_factory=Security)

    @field_validator("secrets")
    @classmethod
    def _secret_targets(cls, secrets: list[SecretRef]) -> list[SecretRef]:
        return _check_secrets(secrets)


class StatefulServiceSpec(WorkloadSpec):
    members: Annotated[int, Field(ge=1)]
    storage: Storage
    pod_management_policy: Literal["OrderedReady", "Parallel"] = "OrderedReady"
    #: Members with an ordinal at or above this get the new version first (canary).
    update_partition: Annotated[int, Field(ge=0)] = 0
    backup: Backup | None = None
    #: Opt-in: let a sync delete this service's data volumes when it is removed.
    prune_data: bool = False
    #: Opt-in: let a sync re-create the StatefulSet when a change cannot be made in place
    #: (storage size, podManagementPolicy, …); pods and volumes stay (orphan deletion).
    allow_recreate: bool = False

    @field_validator("update_partition")
    @classmethod
    def _partition(cls, partition: int, info: ValidationInfo) -> int:
        members = info.data.get("members")
        if members is not None and partition > members:
            raise ValueError(f"updatePartition ({partition}) exceeds members ({members})")
        return partition


class CustomResourceSpec(SpecModel):
    """An operator's resource, checked against its CRD's schema."""

    api_version: str = Field(alias="apiVersion", pattern=r"^[a-z0-9.-]+/[a-z0-9]+$")
    kind: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*$")]
    spec: dict[str, Any] = Field(default_factory=dict)


class ManifestsSpec(SpecModel):
    """Raw Kubernetes objects, inline or from YAML files; still schema-checked."""

    objects: list[dict[str, Any]] = Field(default_factory=list)
    #: YAML files of Kubernetes objects, relative to the spec file.
    files: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.objects and not self.files:
            raise ValueError("list at least one object in objects or one file in files")
        return self


class _App(SpecModel):
    api_version: Literal["specc.dev/v1alpha1"] = Field(alias="apiVersion")
    metadata: AppMetadata
    placement: Placement = Field(default_factory=Placement)
    overrides: Overrides = Field(default_factory=Overrides)
    adopt: bool = Field(
        default=False,
        description="Take this app's objects over from another owner (another ApplySet, "
        "Helm, another specc cluster) when they already exist; without it a sync refuses "
        "such objects and leaves them untouched.",
    )


class Service(_App):
    kind: Literal["Service"]
    spec: ServiceSpec


class StatefulService(_App):
    kind: Literal["StatefulService"]
    spec: StatefulServiceSpec


class CustomResource(_App):
    kind: Literal["CustomResource"]
    spec: CustomResourceSpec


class Manifests(_App):
    kind: Literal["Manifests"]
    spec: ManifestsSpec


# After _App: the monitoring kind builds on it (and specc.spec imports this module first).
from specc.spec.monitoring import MonitoringStack  # noqa: E402

App = Service | StatefulService | CustomResource | Manifests | MonitoringStack

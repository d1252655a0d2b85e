"""The app kinds: ``Service``, ``StatefulService``, ``CustomResource``, ``Manifests``
(and, from :mod:`specc.spec.monitoring`, ``MonitoringStack``)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

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


class Autoscaling(SpecModel):
    """Becomes a HorizontalPodAutoscaler; the Deployment then carries no replicas."""

    min_replicas: Annotated[int, Field(ge=1)]
    max_replicas: Annotated[int, Field(ge=1)]
    target_cpu_utilization: Annotated[int, Field(ge=1, le=100)] = Field(
        default=80, alias="targetCPUUtilization"
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
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
    def _one(self) -> DisruptionBudget:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("set exactly one of minAvailable and maxUnavailable")
        for v in (self.min_available, self.max_unavailable):
            if isinstance(v, str) and not re.match(r"^[0-9]+%$", v):
                raise ValueError(f"{v!r} is neither a count nor a percentage like '50%'")
        return self


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

    # Field validators rather than one model validator: they run even when another
    # field is invalid, and their errors point at the field.
    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[Port]) -> list[Port]:
        names: set[str] = set()
        numbers: set[tuple[int, str]] = set()
        for p in ports:
            if p.name in names:
                raise ValueError(f"port name {p.name!r} is used twice")
            if (p.port, p.protocol) in numbers:
                raise ValueError(f"port {p.port}/{p.protocol} is used twice")
            names.add(p.name)
            numbers.add((p.port, p.protocol))
        return ports

    @field_validator("secrets")
    @classmethod
    def _secret_targets(cls, secrets: list[SecretRef]) -> list[SecretRef]:
        for s in secrets:
            if (s.env is None) == (s.mount_path is None):
                raise ValueError(
                    f"secret {s.secret!r}: set exactly one of env (with key) and mountPath"
                )
            if s.env is not None and s.key is None:
                raise ValueError(f"secret {s.secret!r}: env {s.env!r} needs a key")
        return secrets

    @model_validator(mode="after")
    def _workload_rules(self) -> WorkloadSpec:
        if self.config is not None:
            clash = set(self.config.literals) & set(self.env)
            if clash:
                raise ValueError(f"{sorted(clash)} set both in env and config.literals")
        return self


class ServiceSpec(WorkloadSpec):
    replicas: Annotated[int, Field(ge=0)] | None = None
    autoscaling: Autoscaling | None = None
    expose: Expose = Field(default_factory=Expose)
    disruption_budget: DisruptionBudget | None = None
    #: Spread pods across zones (topology.kubernetes.io/zone).
    zone_spread: bool = False

    @model_validator(mode="after")
    def _scaling(self) -> ServiceSpec:
        if self.replicas is not None and self.autoscaling is not None:
            raise ValueError(
                "replicas and autoscaling exclude each other: the autoscaler owns replicas"
            )
        return self


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


class StatefulServiceSpec(WorkloadSpec):
    members: Annotated[int, Field(ge=1)]
    storage: Storage
    pod_management_policy: Literal["OrderedReady", "Parallel"] = "OrderedReady"
    #: Members with an ordinal at or above this get the new version first (canary).
    update_partition: Annotated[int, Field(ge=0)] = 0
    backup: Backup | None = None
    #: Opt-in: let a sync delete this service's data volumes when it is removed.
    prune_data: bool = False

    @model_validator(mode="after")
    def _partition(self) -> StatefulServiceSpec:
        if self.update_partition > self.members:
            raise ValueError(
                f"updatePartition ({self.update_partition}) exceeds members ({self.members})"
            )
        return self


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
    def _some(self) -> ManifestsSpec:
        if not self.objects and not self.files:
            raise ValueError("list at least one object in objects or one file in files")
        return self


class _App(SpecModel):
    api_version: Literal["specc.dev/v1alpha1"] = Field(alias="apiVersion")
    metadata: AppMetadata
    placement: Placement = Field(default_factory=Placement)
    overrides: Overrides = Field(default_factory=Overrides)


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

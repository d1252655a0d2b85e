"""Kind ``Team``: a namespace with its quota, limits, network policy and access."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from specc.spec.base import (
    DNSLabel,
    Labels,
    Metadata,
    PortNumber,
    Quantity,
    ResourceList,
    SpecModel,
    dns_label,
)


class Quota(SpecModel):
    """Becomes a ResourceQuota: the team's total requests and limits."""

    cpu: Quantity | None = None
    memory: Quantity | None = None
    limits_cpu: Quantity | None = None
    limits_memory: Quantity | None = None
    storage: Quantity | None = None
    pods: Annotated[int, Field(ge=0)] | None = None


class LimitDefaults(SpecModel):
    """Becomes a LimitRange: what a container gets when it asks for nothing."""

    default_request: ResourceList | None = None
    default: ResourceList | None = None
    max: ResourceList | None = None


class AllowedSource(SpecModel):
    """A named source the default-deny NetworkPolicy lets in."""

    name: DNSLabel
    namespace_selector: Labels | None = None
    pod_selector: Labels | None = None
    ports: list[PortNumber] | None = None

    @model_validator(mode="after")
    def _a_peer(self) -> AllowedSource:
        # A NetworkPolicy peer with neither selector is refused by the API server.
        if self.namespace_selector is None and self.pod_selector is None:
            raise ValueError(
                "set namespaceSelector and/or podSelector ({} selects every namespace or pod)"
            )
        return self


class Network(SpecModel):
    allow_same_namespace: bool = True
    allow_from: list[AllowedSource] = Field(default_factory=list)


class Access(SpecModel):
    """Binds a group, user or service account to a built-in ClusterRole in the namespace."""

    role: Literal["view", "edit", "admin"]
    group: str | None = None
    user: str | None = None
    #: ``name`` (in the team's namespace) or ``namespace/name``.
    service_account: str | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Access:
        subjects = (self.group, self.user, self.service_account)
        if sum(s is not None for s in subjects) != 1:
            raise ValueError("set exactly one of group, user and serviceAccount")
        if self.service_account is not None:
            for part in self.service_account.split("/", 1):
                dns_label(part)
        return self


class TeamSpec(SpecModel):
    namespace: DNSLabel | None = None
    owners: list[str] = Field(default_factory=list)
    quota: Quota | None = None
    limits: LimitDefaults | None = None
    network: Network = Field(default_factory=Network)
    access: list[Access] = Field(default_factory=list)
    #: No longer read: a team's own file cannot grant it cluster-scoped kinds; fleet.yaml
    #: ``spec.grants`` does.
    allowed_cluster_kinds: list[str] = Field(default_factory=list)

    @field_validator("allowed_cluster_kinds")
    @classmethod
    def _moved(cls, kinds: list[str]) -> list[str]:
        if kinds:
            raise ValueError(
                "allowedClusterKinds moved to fleet.yaml spec.grants (team, kinds): "
                "a team's own file cannot grant it cluster-scoped kinds"
            )
        return kinds


class Team(SpecModel):
    api_version: Literal["specc.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Team"]
    metadata: Metadata
    spec: TeamSpec = Field(default_factory=TeamSpec)

    @property
    def namespace(self) -> str:
        return self.spec.namespace or self.metadata.name

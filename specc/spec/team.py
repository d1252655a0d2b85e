"""Kind ``Team``: a namespace with its quota, limits, network policy and access."""

import ipaddress
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, field_validator, model_validator

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


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR (such as 10.0.0.0/8 or fd00::/8)") from None
    if "/" not in value:
        raise ValueError(f"{value!r} is not a CIDR: add the prefix length ({net})")
    if str(net) != value.lower() and net.compressed != value.lower():
        raise ValueError(f"{value!r} has host bits set; the network is {net}")
    return net


class IPBlock(SpecModel):
    """Addresses outside the cluster a source may come from (load balancers, webhooks)."""

    #: The network, as a CIDR (``10.0.0.0/8``, ``fd00::/8``).
    cidr: str
    #: Parts of ``cidr`` that are not let in; each inside ``cidr``.
    except_: list[str] = Field(default_factory=list, alias="except")

    @model_validator(mode="after")
    def _cidrs(self) -> Self:
        # As ValidateIPBlock: a CIDR, and every exception a strict part of it.
        net = _network(self.cidr)
        for value in self.except_:
            part = _network(value)
            if part.version != net.version or not part.subnet_of(net) or part == net:  # type: ignore[arg-type]
                raise ValueError(f"except {value!r} must be a part of cidr {self.cidr!r}")
        return self


class AllowedSource(SpecModel):
    """A named source the default-deny NetworkPolicy lets in."""

    name: DNSLabel
    namespace_selector: Labels | None = None
    pod_selector: Labels | None = None
    ip_block: IPBlock | None = None
    ports: list[PortNumber] | None = None

    @model_validator(mode="after")
    def _a_peer(self) -> Self:
        selectors = self.namespace_selector is not None or self.pod_selector is not None
        # The API server refuses a peer with nothing, and one mixing ipBlock with selectors.
        if self.ip_block is not None and selectors:
            raise ValueError("ipBlock cannot be combined with namespaceSelector or podSelector")
        if self.ip_block is None and not selectors:
            raise ValueError(
                "set namespaceSelector and/or podSelector ({} selects every namespace or pod), "
                "or ipBlock"
            )
        return self


class Network(SpecModel):
    #: Off: specc writes no NetworkPolicy for the team (its pods accept any ingress).
    default_deny: bool = True
    allow_same_namespace: bool = True
    allow_from: list[AllowedSource] = Field(default_factory=list)

    @model_validator(mode="after")
    def _allow_needs_deny(self) -> Self:
        # Any NetworkPolicy selecting a pod isolates it: an allow rule without the
        # default-deny would still deny everything else.
        if not self.default_deny and self.allow_from:
            raise ValueError(
                "allowFrom needs defaultDeny: true (without it every source is let in)"
            )
        return self


def _namespace_labels(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if key.startswith("specc.dev/") or key == "kubernetes.io/metadata.name":
            raise ValueError(f"label {key!r} is not the team's to set")
    return value


def _namespace_annotations(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if key.startswith("specc.dev/"):
            raise ValueError(f"annotation {key!r} is specc's own")
    return value


class Access(SpecModel):
    """Binds a group, user or service account to a built-in ClusterRole in the namespace."""

    role: Literal["view", "edit", "admin"]
    group: str | None = None
    user: str | None = None
    #: ``name`` (in the team's namespace) or ``namespace/name``.
    service_account: str | None = None

    @model_validator(mode="after")
    def _one_subject(self) -> Self:
        subjects = (self.group, self.user, self.service_account)
        if sum(s is not None for s in subjects) != 1:
            raise ValueError("set exactly one of group, user and serviceAccount")
        if self.service_account is not None:
            for part in self.service_account.split("/", 1):
                dns_label(part)
        return self


class TeamSpec(SpecModel):
    namespace: DNSLabel | None = None
    #: Labels of the team's Namespace (``pod-security.kubernetes.io/enforce: restricted``).
    labels: Annotated[Labels, AfterValidator(_namespace_labels)] = Field(default_factory=dict)
    #: Annotations of the team's Namespace.
    annotations: Annotated[dict[str, str], AfterValidator(_namespace_annotations)] = Field(
        default_factory=dict
    )
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

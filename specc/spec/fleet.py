"""Kind ``Fleet``: the clusters and the environments they belong to."""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from specc.spec.base import API_VERSION, DNSLabel, Labels, Metadata, Resources, SpecModel
from specc.spec.located import Problem, raise_problems

#: Kubernetes versions whose schemas specc can check against (those specc/data/kubernetes holds).
SUPPORTED_VERSIONS = tuple(f"1.{minor}" for minor in range(27, 38))


def _k8s_version(value: str) -> str:
    m = re.match(r"^v?(1\.\d+)(\.\d+)?$", value)
    if not m or m.group(1) not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"Kubernetes version {value!r} is not one specc can check against "
            f"(supported: {SUPPORTED_VERSIONS[0]} to {SUPPORTED_VERSIONS[-1]})"
        )
    return m.group(1)


class EnvironmentDefaults(SpecModel):
    """Values an app gets in this environment when it does not set them itself."""

    replicas: Annotated[int, Field(ge=0)] | None = None
    resources: Resources | None = None
    #: antiAffinity of the apps that set none (default: preferred, so that several
    #: members fit on a one-node dev cluster; prod typically says required).
    anti_affinity: Literal["required", "preferred", "none"] | None = None


class Environment(SpecModel):
    name: DNSLabel
    defaults: EnvironmentDefaults = Field(default_factory=EnvironmentDefaults)


class Connection(SpecModel):
    """How the agent and `specc sync` reach the cluster."""

    context: str | None = None
    kubeconfig: str | None = None
    in_cluster: bool = False


class Cluster(SpecModel):
    name: DNSLabel
    environment: DNSLabel
    kubernetes_version: Annotated[str, AfterValidator(_k8s_version)] = "1.33"
    labels: Labels = Field(default_factory=dict)
    connection: Connection = Field(default_factory=Connection)


class PrunePolicy(SpecModel):
    #: Share of the inventory one sync may delete before it needs --allow-mass-prune.
    budget: Annotated[float, Field(gt=0, le=1)] = 0.25


#: ``Kind.group`` (``Kind`` for the core group), as the ApplySet annotations spell it.
GroupKind = Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]*(\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?)?$")]


class Grant(SpecModel):
    """What one team may declare beyond its own namespace (fleet.yaml is the platform's)."""

    #: The team (teams/ metadata.name) the grant is for.
    team: DNSLabel
    #: Cluster-scoped kinds (``Kind.group``) the team may declare.
    kinds: list[GroupKind] = Field(default_factory=list)
    #: Shared namespaces the team may write into: namespaces specc does not create or
    #: prune (``kube-system``, ``default``, a pre-existing ``monitoring``).
    namespaces: list[DNSLabel] = Field(default_factory=list)
    #: The team's Namespace may enforce Pod Security ``privileged`` (its Team's
    #: ``spec.labels``): its pods may then run privileged, share the host's namespaces
    #: and mount its paths, and so take over their node.
    privileged: bool = False


class FleetSpec(SpecModel):
    environments: Annotated[list[Environment], Field(min_length=1)]
    clusters: Annotated[list[Cluster], Field(min_length=1)]
    prune: PrunePolicy = Field(default_factory=PrunePolicy)
    #: What each team may declare beyond its own namespace; nothing unless listed here.
    grants: list[Grant] = Field(default_factory=list)

    # Field validators: each problem at the item it concerns, every one in one run.
    @field_validator("environments")
    @classmethod
    def _environment_names(cls, environments: list[Environment]) -> list[Environment]:
        raise_problems(_duplicates([e.name for e in environments], "environment"))
        return environments

    @field_validator("clusters")
    @classmethod
    def _cluster_names(cls, clusters: list[Cluster], info: ValidationInfo) -> list[Cluster]:
        problems = _duplicates([c.name for c in clusters], "cluster")
        environments = info.data.get("environments")
        if environments is not None:
            envs = [e.name for e in environments]
            problems += [
                (
                    (i, "environment"),
                    f"cluster {c.name!r} names environment {c.environment!r}, "
                    f"which is not one of {envs}",
                )
                for i, c in enumerate(clusters)
                if c.environment not in envs
            ]
        raise_problems(problems)
        return clusters

    def environment(self, name: str) -> Environment:
        return next(e for e in self.environments if e.name == name)


class Fleet(SpecModel):
    api_version: Literal["specc.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Fleet"]
    metadata: Metadata
    spec: FleetSpec


def _duplicates(names: list[str], what: str) -> list[Problem]:
    first: dict[str, int] = {}
    problems: list[Problem] = []
    for i, n in enumerate(names):
        if n in first:
            problems.append(((i, "name"), f"{what} name {n!r} is used twice (also [{first[n]}])"))
        first.setdefault(n, i)
    return problems


assert API_VERSION == "specc.dev/v1alpha1"

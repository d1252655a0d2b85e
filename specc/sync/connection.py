"""Which cluster a command talks to: one rule for plan, sync, diff --cluster, status and agent.

The kubeconfig file is ``--kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``;
the in-cluster config is used instead when the fleet says ``inCluster: true``, the
process runs in a pod, and the operator named no file or context. The context is
``--context``, else the fleet's ``connection.context``, else the file's only context.
A file with several contexts and none named is refused: its ``current-context`` is
mutable state of the operator's shell, and following it once sent one cluster's
objects into another.

A kubeconfig that fleet.yaml names (``connection.kubeconfig``) is part of the commit,
not of the operator's configuration: it can run programs (``exec`` plugins) and send
credentials to a server of its choosing, so it is used only with
``--use-fleet-kubeconfig``. The agent never reads connection settings from the commit
it applies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from specc.errors import ClusterError, UsageError
from specc.sync.cluster import Cluster, ClusterOptions

#: Where a pod's service account credentials are mounted.
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True)
class ConnectionRequest:
    """What the operator (flags, environment) and the fleet say about reaching a cluster."""

    #: The fleet's name for the cluster (what the identity guard checks).
    cluster: str
    kubeconfig: str | None = None
    context: str | None = None
    #: From fleet.yaml: ``connection.context`` and ``connection.inCluster``.
    fleet_context: str | None = None
    fleet_in_cluster: bool = False
    #: From fleet.yaml: ``connection.kubeconfig``, resolved against the fleet root.
    fleet_kubeconfig: str | None = None
    #: The operator's explicit consent to use ``fleet_kubeconfig`` (--use-fleet-kubeconfig).
    use_fleet_kubeconfig: bool = False


@dataclass(frozen=True)
class Target:
    """The cluster a command talks to, as printed before its first request."""

    cluster: str
    server: str = ""
    context: str = ""
    kubeconfig: str = ""
    in_cluster: bool = False
    #: Why this context: "--context", "fleet.yaml connection.context", "the file's only context".
    context_from: str = ""
    #: Things the operator should know (a fleet kubeconfig left unused...).
    notes: tuple[str, ...] = field(default_factory=tuple)

    def line(self) -> str:
        """Return ``cluster dev: context kind-dev, server https://…``."""
        where = "in-cluster config" if self.in_cluster else f"context {self.context}"
        return f"cluster {self.cluster}: {where}, server {self.server or '?'}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cluster": self.cluster, "server": self.server}
        if self.in_cluster:
            out["inCluster"] = True
        else:
            out.update(context=self.context, kubeconfig=self.kubeconfig)
        if self.context_from:
            out["contextFrom"] = self.context_from
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def in_pod(environ: Mapping[str, str]) -> bool:
    """Return whether the process runs in a Kubernetes pod with a service account."""
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and SERVICE_ACCOUNT_TOKEN.is_file()


def kubeconfig_file(request: ConnectionRequest, environ: Mapping[str, str]) -> str:
    """Return the kubeconfig path (or ``$KUBECONFIG`` list) the rule picks, without reading it."""
    if request.kubeconfig:
        return request.kubeconfig
    if request.fleet_kubeconfig and request.use_fleet_kubeconfig:
        return request.fleet_kubeconfig
    env = environ.get("KUBECONFIG")
    if env:
        return env
    return str(Path(environ.get("HOME") or Path.home()) / ".kube" / "config")


def uses_in_cluster(request: ConnectionRequest, environ: Mapping[str, str], pod: bool) -> bool:
    """Return whether the in-cluster config applies: fleet says so, in a pod, nothing named."""
    named = (
        request.kubeconfig
        or request.context
        or environ.get("KUBECONFIG")
        or (request.fleet_kubeconfig and request.use_fleet_kubeconfig)
    )
    return request.fleet_in_cluster and pod and not named


def choose_context(file: str, contexts: list[str], request: ConnectionRequest) -> tuple[str, str]:
    """Return (context, why) by the rule; raise UsageError naming the file when it cannot."""
    named = [
        (request.context, "--context"),
        (request.fleet_context, "fleet.yaml connection.context"),
    ]
    for wanted, why in named:
        if not wanted:
            continue
        if wanted not in contexts:
            raise UsageError(
                f"{file}: no context {wanted!r} (named by {why} for cluster {request.cluster}); "
                f"contexts: {', '.join(contexts) or 'none'}"
            )
        return wanted, why
    if len(contexts) == 1:
        return contexts[0], "the file's only context"
    if not contexts:
        raise UsageError(f"{file}: no contexts")
    raise UsageError(
        f"{file}: {len(contexts)} contexts ({', '.join(contexts)}) and cluster "
        f"{request.cluster} names none in fleet.yaml connection.context; pass --context "
        "(the file's current-context is not followed)"
    )


def list_contexts(file: str) -> list[str]:
    """Return the context names of a kubeconfig file (or ``:``-separated list), running nothing."""
    from kubernetes.config import kube_config

    paths = [p for p in file.split(os.pathsep) if p]
    if not any(Path(os.path.expanduser(p)).is_file() for p in paths):
        raise UsageError(f"{file}: no such kubeconfig file")
    try:
        contexts, _ = kube_config.list_kube_config_contexts(config_file=file)  # type: ignore[no-untyped-call]
    except Exception as exc:  # the client raises ConfigException, yaml and key errors here
        raise UsageError(f"{file}: not a usable kubeconfig: {exc}") from None
    return sorted(str(c.get("name", "")) for c in contexts or [] if c.get("name"))


def resolve(request: ConnectionRequest, environ: Mapping[str, str] | None = None) -> Target:
    """Return the target the rule picks (server not yet known); raise UsageError if it cannot."""
    env = os.environ if environ is None else environ
    notes: list[str] = []
    if request.fleet_kubeconfig and not request.use_fleet_kubeconfig:
        notes.append(
            f"cluster {request.cluster}: fleet.yaml names connection.kubeconfig "
            f"{request.fleet_kubeconfig!r}; not used without --use-fleet-kubeconfig "
            "(a committed kubeconfig can run programs and send credentials)"
        )
    if uses_in_cluster(request, env, in_pod(env)):
        return Target(request.cluster, in_cluster=True, notes=tuple(notes))
    file = kubeconfig_file(request, env)
    context, why = choose_context(file, list_contexts(file), request)
    return Target(request.cluster, "", context, file, context_from=why, notes=tuple(notes))


def connect(
    request: ConnectionRequest,
    options: ClusterOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Cluster, Target]:
    """Return a client for the cluster the rule picks, and the target it reached.

    Loading credentials runs the chosen context's ``exec`` plugin, if any; nothing is
    sent to the server yet.
    """
    target = resolve(request, environ)
    base = options or ClusterOptions()
    cluster = Cluster.connect(
        replace(
            base,
            kubeconfig=target.kubeconfig or None,
            context=target.context or None,
            in_cluster=target.in_cluster,
        )
    )
    if not cluster.server:
        raise ClusterError(f"{target.kubeconfig or 'in-cluster config'}: names no server")
    return cluster, replace(target, server=cluster.server)

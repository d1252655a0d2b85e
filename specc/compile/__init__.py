"""Compile stage: validated specs → the desired objects of each cluster.

Deterministic: the same fleet gives the same objects in the same order, with values
in the canonical form the API server stores.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc.compile.custom import render_custom_resource, render_manifests
from specc.compile.meta import AppContext
from specc.compile.monitoring import lazy_operator_crds, metrics_ports, render_monitoring_stack
from specc.compile.service import render_service, render_stateful_service
from specc.compile.team import render_team
from specc.errors import CompileError, Finding, LoadError
from specc.limits import size_findings
from specc.load import Document, SourceMap, read_text, resolve_reference
from specc.manifests import manifest_objects
from specc.names import metadata_key_problems, name_problem
from specc.objects import ClusterRender, DesiredObject
from specc.placement import apply_overrides, override_chain
from specc.spec.apps import App, CustomResource, Manifests, Service, StatefulService
from specc.spec.fleet import Cluster
from specc.spec.monitoring import MonitoringStack
from specc.tenancy import Grant, Scopes, TenancyPolicy, crd_group_findings
from specc.validate import ValidApp, ValidFleet, typed

if TYPE_CHECKING:
    from specc.check.crd import LazyCrd

__all__ = ["compile_cluster", "compile_fleet", "effective_app", "fleet_crd_sources", "fleet_crds"]


def fleet_crds(fleet: ValidFleet) -> list[dict[str, Any]]:
    """Return every CustomResourceDefinition the fleet holds: crds/ and Manifests apps.

    The prometheus-operator CRDs specc ships come first (without their schemas: names,
    scope and versions are all the callers read), so that a fleet keeping its own copy
    of them is checked against its copy.
    """
    out: list[dict[str, Any]] = []
    for d in fleet_crd_sources(fleet):
        if isinstance(d, Document):
            out.append(d.data)
        elif isinstance(d, dict):
            out.append(d)
        else:
            out.append(dict(d.stub))
    return out


def fleet_crd_sources(fleet: ValidFleet) -> list[dict[str, Any] | Document | LazyCrd]:
    """Return what :func:`fleet_crds` does, as documents where a file holds the CRD.

    The check stage reports a malformed CRD of the fleet at its file:line; the bundled
    CRDs' schemas are read only when a resource of their kinds is checked. A CRD of the
    fleet replaces a bundled one of the same name.
    """
    # Always there, at no cost until used: a Manifests PrometheusRule is checked too.
    out: list[dict[str, Any] | Document | LazyCrd] = list(lazy_operator_crds())
    out += [d for d in fleet.crds if _is_crd(d.data)]
    for app in fleet.apps:
        if isinstance(app.model, Manifests):
            for o in manifest_objects(app.model.spec.objects, app.doc.source, app.files):
                if _is_crd(o.body):
                    # A document of its own, so that a malformed CRD is reported at its line.
                    out.append(Document(o.source.path, 0, o.body, o.source.sub(o.loc)))
    return out


def _is_crd(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("kind") == "CustomResourceDefinition"
        and str(obj.get("apiVersion", "")).startswith("apiextensions.k8s.io/")
    )


def effective_app(
    app: ValidApp, cluster: Cluster
) -> tuple[App, SourceMap, list[tuple[str | int, ...]]]:
    """Return the app as it applies on ``cluster``: overrides merged, typed again."""
    chain = override_chain(app.doc.data, cluster)
    if not chain:
        return app.model, app.doc.source, chain
    merged, source = apply_overrides(app.doc.data, app.doc.source, chain)
    model, findings = typed(type(app.model), merged, source)
    if model is None:  # validation checked every override already; this is a bug guard
        raise CompileError(findings)
    return model, source, chain


def compile_fleet(fleet: ValidFleet, clusters: list[str] | None = None) -> list[ClusterRender]:
    """Return the render of each cluster (all, or those named), in fleet.yaml order."""
    scopes = Scopes.from_crds(fleet_crds(fleet))
    selected = [fleet.cluster(n) for n in clusters] if clusters else fleet.clusters
    renders: list[ClusterRender] = []
    findings: list[Finding] = crd_group_findings(
        (d.data, d.position) for d in fleet_crd_sources(fleet) if isinstance(d, Document)
    )
    reader = functools.lru_cache(maxsize=None)(functools.partial(_read, fleet.root))
    for cluster in selected:
        try:
            renders.append(compile_cluster(fleet, cluster, scopes, reader))
        except CompileError as exc:
            findings.extend(exc.findings)
        except Exception as exc:  # a bug in a step: a located refusal, never a traceback
            findings.extend(_locate_failure(fleet, cluster, scopes, reader, exc))
    if findings:
        raise CompileError(sorted(set(findings)))
    return renders


def _locate_failure(
    fleet: ValidFleet, cluster: Cluster, scopes: Scopes, reader: Any, exc: Exception
) -> list[Finding]:
    """Return findings naming the apps whose compile fails unexpectedly (a bug in specc).

    Runs only after a failure: each app placed on the cluster is compiled alone to find
    the one(s) that trip the bug, so the error points at a spec, not at a traceback.
    """
    out = []
    for app in fleet.apps_for(cluster):
        try:
            compile_cluster(dataclasses.replace(fleet, apps=[app]), cluster, scopes, reader)
        except CompileError:
            continue
        except Exception as one:
            out.append(
                Finding(
                    app.doc.position,
                    f"specc could not compile this {app.model.kind} for cluster "
                    f"{cluster.name!r}: {type(one).__name__}: {one} (a bug in specc; "
                    "please report it with this spec)",
                )
            )
    if not out:
        out.append(
            Finding(
                fleet.fleet_doc.position,
                f"specc could not compile cluster {cluster.name!r}: {type(exc).__name__}: {exc} "
                "(a bug in specc; please report it with this fleet)",
            )
        )
    return out


def ip_block_findings(objects: list[DesiredObject]) -> list[Finding]:
    """Return a finding for each NetworkPolicy ipBlock the API server would refuse.

    The schema says only "string"; ValidateIPBlock wants a CIDR with its prefix and each
    exception strictly inside it. Host bits (``10.0.0.1/8``) are left alone here: the
    server still takes them in this legacy field (a Team's allowFrom refuses them).
    """
    out = []
    for obj in objects:
        if obj.kind != "NetworkPolicy" or not obj.api_version.startswith("networking.k8s.io/"):
            continue
        spec = obj.body.get("spec")
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            rules = spec.get(direction) if isinstance(spec, dict) else None
            for i, rule in enumerate(rules if isinstance(rules, list) else []):
                peers = rule.get(peers_key) if isinstance(rule, dict) else None
                for j, peer in enumerate(peers if isinstance(peers, list) else []):
                    block = peer.get("ipBlock") if isinstance(peer, dict) else None
                    if isinstance(block, dict):
                        loc = ("spec", direction, i, peers_key, j, "ipBlock")
                        why = _ip_block_problem(block)
                        if why:
                            out.append(Finding(obj.position_of(loc), why, _dotted(loc), obj.ref))
    return out


def _cidr(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "/" not in value:
        return None
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _ip_block_problem(block: dict[str, Any]) -> str:
    cidr = block.get("cidr")
    if not isinstance(cidr, str):
        return ""  # the schema check reports a missing or non-string cidr
    net = _cidr(cidr)
    if net is None:
        return f"cidr {cidr!r} is not a CIDR (such as 10.0.0.0/8 or fd00::/8)"
    excepts = block.get("except")
    for value in excepts if isinstance(excepts, list) else []:
        if not isinstance(value, str):
            continue
        part = _cidr(value)
        if part is None:
            return f"except {value!r} is not a CIDR (such as 10.0.0.0/8 or fd00::/8)"
        inside = part.version == net.version and part.subnet_of(net)  # type: ignore[arg-type]
        if not inside or part.prefixlen <= net.prefixlen:
            return f"except {value!r} must be a strict part of cidr {cidr!r}"
    return ""


def _dotted(loc: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")


def name_findings(objects: list[DesiredObject]) -> list[Finding]:
    """Return a finding for each object whose name the API server would refuse, at its line."""
    out = []
    for obj in objects:
        problem = name_problem(obj.key.group_kind, obj.key.name, obj.body)
        if problem:
            where = obj.position_of(("metadata", "name"))
            out.append(Finding(where, problem, "metadata.name", obj.ref))
        meta = obj.body.get("metadata")
        for field, key, why in metadata_key_problems(meta if isinstance(meta, dict) else {}):
            where = obj.position_of(("metadata", field, key))
            out.append(Finding(where, why, f"metadata.{field}", obj.ref))
    return out


def tenancy_policy(fleet: ValidFleet, scopes: Scopes) -> TenancyPolicy:
    """Return the tenancy rules of ``fleet``: each team's namespace and fleet.yaml's grants."""
    grants: dict[str, Grant] = {}
    for g in fleet.fleet.spec.grants:
        had = grants.get(g.team, Grant())
        grants[g.team] = Grant(
            had.kinds | set(g.kinds),
            had.namespaces | set(g.namespaces),
            had.privileged or g.privileged,
        )
    namespaces = {name: team.namespace for name, (team, _) in fleet.teams.items()}
    return TenancyPolicy(scopes, namespaces, grants)


def _read(root: Path, base: str, ref: str) -> str:
    return read_text(root, resolve_reference(root, base, ref))


def compile_cluster(
    fleet: ValidFleet,
    cluster: Cluster,
    scopes: Scopes | None = None,
    reader: Any = None,
) -> ClusterRender:
    """Return every object the fleet declares for ``cluster``, sorted by identity."""
    scopes = (scopes or Scopes.from_crds(fleet_crds(fleet))).for_version(cluster.kubernetes_version)
    read = reader or functools.partial(_read, fleet.root)
    policy = tenancy_policy(fleet, scopes)
    render = ClusterRender(
        cluster.name, cluster.kubernetes_version, fleet=fleet.fleet.metadata.name, tenancy=policy
    )
    findings: list[Finding] = []
    objects: list[DesiredObject] = []
    for team, doc in fleet.teams.values():
        objects += render_team(team, doc.source)
    defaults = fleet.fleet.spec.environment(cluster.environment).defaults
    for app in fleet.apps_for(cluster):
        model, source, chain = effective_app(app, cluster)
        team = fleet.teams[model.metadata.team][0]
        ctx = AppContext(
            name=model.metadata.name,
            team=team.metadata.name,
            namespace=team.namespace,
            origin=f"{model.kind}/{team.metadata.name}/{model.metadata.name}",
            extra_labels=tuple(sorted(model.metadata.labels.items())),
        )
        if chain:
            render.overrides[ctx.origin] = [app.doc.source.key(loc) for loc in chain]
        if model.adopt:
            render.adopt.add(ctx.origin)
        if isinstance(model, Service | StatefulService):
            files: dict[str, str] = {}
            if model.spec.config is not None:
                for key, ref in model.spec.config.files.items():
                    try:
                        files[key] = read(app.doc.path, ref)
                    except (LoadError, ValueError, OSError) as exc:
                        where = source.value(("spec", "config", "files", key))
                        findings.append(Finding(where, f"config file {ref!r}: {exc}"))
            try:
                if isinstance(model, Service):
                    objects += render_service(ctx, model.spec, source, files, defaults)
                else:
                    objects += render_stateful_service(ctx, model.spec, source, files, defaults)
            except CompileError as exc:  # report every app's problems, not the first
                findings += exc.findings
        elif isinstance(model, CustomResource):
            objects += render_custom_resource(ctx, model.spec, source, scopes)
        elif isinstance(model, MonitoringStack):
            team_apps = [
                effective_app(a, cluster)[0]
                for a in fleet.apps_for(cluster)
                if a.model.metadata.team == ctx.team
            ]
            objects += render_monitoring_stack(
                ctx, model.spec, source, cluster.name, metrics_ports(team_apps)
            )
        else:
            made, problems = render_manifests(ctx, model.spec, source, app.files, scopes)
            objects += made
            findings += problems

    # One tenancy check for the objects of every app kind, overrides merged.
    refused = policy.violations(objects)
    findings += refused
    findings += name_findings(objects)
    findings += size_findings(objects)
    findings += ip_block_findings(objects)
    # An object its team may not declare is reported as that, not also as a duplicate.
    refused_at = {(f.position, f.subject) for f in refused}
    seen: dict[Any, DesiredObject] = {}
    for obj in objects:
        first = seen.get(obj.key)
        if first is not None and (obj.source, obj.ref) in refused_at:
            continue
        if first is not None:
            findings.append(
                Finding(
                    obj.source,
                    f"declared twice on cluster {cluster.name!r}: also by {first.origin} at {first.source}",
                    subject=obj.ref,
                )
            )
            continue
        seen[obj.key] = obj
    if findings:
        raise CompileError(findings)
    render.objects = sorted(seen.values(), key=lambda o: o.key)
    return render

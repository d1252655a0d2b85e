"""Renderer of ``Team``: Namespace, ResourceQuota, LimitRange, NetworkPolicies, RoleBindings."""

from __future__ import annotations

import re
from typing import Any

from specc.compile.meta import AppContext, make
from specc.compile.workload import resource_list
from specc.load import SourceMap
from specc.objects import DesiredObject
from specc.spec.team import Team


def team_context(team: Team) -> AppContext:
    return AppContext(
        name=team.metadata.name,
        team=team.metadata.name,
        namespace=team.namespace,
        origin=f"Team/{team.metadata.name}",
    )


def render_team(team: Team, source: SourceMap) -> list[DesiredObject]:
    """Return the objects that make a team's namespace: isolated, bounded and accessible."""
    ctx = team_context(team)
    s = team.spec
    namespace = make(
        ctx,
        "v1",
        "Namespace",
        team.namespace,
        source.value(()),
        {},
        namespaced=False,
        annotations={"specc.dev/owners": ", ".join(s.owners)} if s.owners else None,
    )
    meta = namespace.body["metadata"]
    # The team's labels (pod-security.kubernetes.io/enforce) join specc's, which win.
    if s.labels:
        meta["labels"] = {**s.labels, **meta.get("labels", {})}
    if s.annotations:
        meta["annotations"] = {**s.annotations, **meta.get("annotations", {})}
    out = [namespace]
    if s.quota is not None:
        q = s.quota
        hard: dict[str, Any] = {}
        for key, value in (
            ("limits.cpu", q.limits_cpu),
            ("limits.memory", q.limits_memory),
            ("pods", str(q.pods) if q.pods is not None else None),
            ("requests.cpu", q.cpu),
            ("requests.memory", q.memory),
            ("requests.storage", q.storage),
        ):
            if value is not None:
                hard[key] = value
        out.append(
            make(
                ctx,
                "v1",
                "ResourceQuota",
                "team-quota",
                source.key(("spec", "quota")),
                {"spec": {"hard": hard}},
            )
        )
    if s.limits is not None:
        item: dict[str, Any] = {"type": "Container"}
        for key, rl in (
            ("default", s.limits.default),
            ("defaultRequest", s.limits.default_request),
            ("max", s.limits.max),
        ):
            if rl is not None and (values := resource_list(rl)):
                item[key] = values
        out.append(
            make(
                ctx,
                "v1",
                "LimitRange",
                "team-limits",
                source.key(("spec", "limits")),
                {"spec": {"limits": [item]}},
            )
        )
    out.extend(_network_policies(ctx, team, source))
    for i, access in enumerate(s.access):
        subject: dict[str, Any]
        if access.group is not None:
            subject = {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Group",
                "name": access.group,
            }
        elif access.user is not None:
            subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": access.user}
        else:
            sa_ns, _, sa_name = (access.service_account or "").rpartition("/")
            subject = {
                "kind": "ServiceAccount",
                "name": sa_name,
                "namespace": sa_ns or team.namespace,
            }
        name = f"{access.role}-{_slug(subject['name'])}"
        out.append(
            make(
                ctx,
                "rbac.authorization.k8s.io/v1",
                "RoleBinding",
                name,
                source.value(("spec", "access", i)),
                {
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": access.role,
                    },
                    "subjects": [subject],
                },
            )
        )
    return out


def _network_policies(ctx: AppContext, team: Team, source: SourceMap) -> list[DesiredObject]:
    net = team.spec.network
    where = source.key(("spec", "network"))
    if not net.default_deny:
        return []
    out = [
        make(
            ctx,
            "networking.k8s.io/v1",
            "NetworkPolicy",
            "default-deny",
            where,
            {"spec": {"podSelector": {}, "policyTypes": ["Ingress"]}},
        )
    ]
    if net.allow_same_namespace:
        out.append(
            make(
                ctx,
                "networking.k8s.io/v1",
                "NetworkPolicy",
                "allow-same-namespace",
                where,
                {
                    "spec": {
                        "ingress": [{"from": [{"podSelector": {}}]}],
                        "podSelector": {},
                        "policyTypes": ["Ingress"],
                    }
                },
            )
        )
    for i, src in enumerate(net.allow_from):
        peer: dict[str, Any] = {}
        if src.ip_block is not None:
            block: dict[str, Any] = {"cidr": src.ip_block.cidr}
            if src.ip_block.except_:
                block["except"] = list(src.ip_block.except_)
            peer["ipBlock"] = block
        if src.namespace_selector is not None:
            peer["namespaceSelector"] = (
                {"matchLabels": src.namespace_selector} if src.namespace_selector else {}
            )
        if src.pod_selector is not None:
            peer["podSelector"] = {"matchLabels": src.pod_selector} if src.pod_selector else {}
        rule: dict[str, Any] = {"from": [peer]}
        if src.ports:
            rule["ports"] = [{"port": p, "protocol": "TCP"} for p in src.ports]
        out.append(
            make(
                ctx,
                "networking.k8s.io/v1",
                "NetworkPolicy",
                f"allow-{src.name}",
                source.value(("spec", "network", "allowFrom", i)),
                {"spec": {"ingress": [rule], "podSelector": {}, "policyTypes": ["Ingress"]}},
            )
        )
    return out


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return slug[:50] or "subject"

"""Selectors against what they select, in each cluster's render, offline.

Every Service selector, PodDisruptionBudget selector, NetworkPolicy podSelector,
HorizontalPodAutoscaler scaleTargetRef and ServiceMonitor/PodMonitor selector is matched
against the rendered objects of its namespace (ServiceMonitors: of the namespaces their
``namespaceSelector`` names): pod templates for the pod selectors, Services for a
ServiceMonitor, the named workload for an autoscaler.

Every finding is a **warning** (``specc validate`` prints it at the selector's line and
still exits 0): pods and Services may come from outside the render (an operator's
custom resource, a Helm release in a shared namespace, an app not yet placed on this
cluster), so a selector that matches nothing in the render is a strong hint, not proof.
The message says which case it is: in a team's own namespace with no custom resource
of an operator the render cannot see into, "selects no pod" means nothing specc
deploys will ever match. A selector that selects only pods of another app is a warning
too: it may be meant (one disruption budget over two apps), but is usually a copied label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from specc.check.podsecurity import TEMPLATE_PATHS
from specc.errors import Finding, Severity
from specc.objects import DesiredObject

Labels = dict[str, str]


def matches(selector: dict[str, Any], labels: Labels) -> bool:
    """Return whether a LabelSelector (matchLabels, matchExpressions) selects ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not isinstance(expr, dict):
            return False
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(str(key)) not in values:
            return False
        if op == "NotIn" and key in labels and labels[str(key)] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _labels(meta: Any) -> Labels:
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _at(body: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        body = body.get(part) if isinstance(body, dict) else None
    return body


#: Pods the prometheus-operator makes for its resources, by the labels it sets on them.
_OPERATOR_PODS = {
    ("monitoring.coreos.com", "Prometheus"): "prometheus",
    ("monitoring.coreos.com", "Alertmanager"): "alertmanager",
}


def _pods(obj: DesiredObject) -> Labels | None:
    where = TEMPLATE_PATHS.get((str(obj.body.get("apiVersion")), obj.kind))
    if where is not None:
        return _labels(_at(obj.body, (*where, "metadata")))
    made = _OPERATOR_PODS.get((obj.api_version.partition("/")[0], obj.kind))
    if made is None:
        return None
    # prometheus-operator's StatefulSet pods: its labels, then spec.podMetadata's.
    labels = {
        "app.kubernetes.io/name": made,
        "app.kubernetes.io/instance": obj.name,
        "app.kubernetes.io/managed-by": "prometheus-operator",
        made: obj.name,
        "operator.prometheus.io/name": obj.name,
    }
    return {**_labels(_at(obj.body, ("spec", "podMetadata"))), **labels}


def _makes_unseen(group: str) -> bool:
    """Return whether resources of ``group`` may make pods the render does not show.

    Built-in groups make none beyond their templates; the prometheus-operator's pods
    are modelled (``_OPERATOR_PODS``); any other operator's custom resource may.
    """
    if "." not in group or group.endswith(".k8s.io"):
        return False
    return group != "monitoring.coreos.com"


def check_selectors(
    objects: Iterable[DesiredObject], shared: frozenset[str] = frozenset()
) -> list[Finding]:
    """Return a finding for each selector that selects nothing or another app's pods.

    ``shared`` names namespaces specc does not own (pods there may come from elsewhere).
    """
    objs = list(objects)
    pods: dict[str, list[tuple[Labels, DesiredObject]]] = defaultdict(list)
    services: dict[str, list[DesiredObject]] = defaultdict(list)
    names: set[tuple[str, str, str]] = set()
    custom: set[str] = set()
    for obj in objs:
        ns = obj.namespace or ""
        names.add((ns, obj.kind, obj.name))
        labels = _pods(obj)
        if labels is not None:
            pods[ns].append((labels, obj))
        elif obj.kind == "Service" and obj.api_version == "v1":
            services[ns].append(obj)
        elif _makes_unseen(obj.api_version.partition("/")[0]):
            custom.add(ns)  # an operator's resource: it may make pods or Services we cannot see

    # (namespace, key, value) → pods carrying that label: a selector's first matchLabels
    # pair narrows its candidates, so a namespace of many apps costs no selectors × pods.
    by_label: dict[tuple[str, str, str], list[tuple[Labels, DesiredObject]]] = defaultdict(list)
    for ns, entries in pods.items():
        for labels, obj in entries:
            for key, value in labels.items():
                by_label[(ns, key, value)].append((labels, obj))

    def candidates(ns: str, selector: dict[str, Any]) -> list[tuple[Labels, DesiredObject]]:
        first = next(iter((selector.get("matchLabels") or {}).items()), None)
        if first is None:
            return pods[ns]
        return by_label.get((ns, str(first[0]), str(first[1])), [])

    def severity(ns: str) -> Severity:
        # Warnings only (see the module docstring); the wording tells the two cases apart.
        return "warning"

    def unseen(ns: str) -> str:
        if ns in custom or ns in shared or not ns:
            return " (its pods may come from outside the render)"
        return " (nothing specc deploys there matches it)"

    out: list[Finding] = []

    def report(obj: DesiredObject, loc: tuple[str, ...], message: str, sev: Severity) -> None:
        out.append(Finding(obj.position_of(loc), message, ".".join(loc), obj.ref, sev))

    def pod_selector(obj: DesiredObject, loc: tuple[str, ...], selector: dict[str, Any]) -> None:
        ns = obj.namespace or ""
        hit = [o for labels, o in candidates(ns, selector) if matches(selector, labels)]
        if not hit:
            report(
                obj,
                loc,
                f"selector {_show(selector)} selects no pod of the render in namespace "
                f"{ns!r}{unseen(ns)}",
                severity(ns),
            )
            return
        others = sorted({o.origin for o in hit if o.origin != obj.origin})
        if others and not any(o.origin == obj.origin for o in hit):
            report(
                obj,
                loc,
                f"selector {_show(selector)} selects pods of another app: {', '.join(others)}",
                "warning",
            )

    for obj in objs:
        body, api = obj.body, obj.api_version
        raw = body.get("spec")
        spec: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if obj.kind == "Service" and api == "v1":
            selector = spec.get("selector")
            if isinstance(selector, dict) and selector:
                pod_selector(obj, ("spec", "selector"), {"matchLabels": selector})
        elif obj.kind == "PodDisruptionBudget" and api.startswith("policy/"):
            selector = spec.get("selector")
            if isinstance(selector, dict) and (
                selector.get("matchLabels") or selector.get("matchExpressions")
            ):
                pod_selector(obj, ("spec", "selector"), selector)
        elif obj.kind == "NetworkPolicy" and api.startswith("networking.k8s.io/"):
            selector = spec.get("podSelector")
            if isinstance(selector, dict) and (
                selector.get("matchLabels") or selector.get("matchExpressions")
            ):
                pod_selector(obj, ("spec", "podSelector"), selector)
        elif obj.kind == "HorizontalPodAutoscaler" and api.startswith("autoscaling/"):
            ref = spec.get("scaleTargetRef")
            if (
                isinstance(ref, dict)
                and (obj.namespace or "", ref.get("kind"), ref.get("name")) not in names
            ):
                ns = obj.namespace or ""
                report(
                    obj,
                    ("spec", "scaleTargetRef"),
                    f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not in the render "
                    f"of namespace {ns!r}",
                    severity(ns),
                )
        elif obj.kind in ("ServiceMonitor", "PodMonitor") and api.startswith(
            "monitoring.coreos.com/"
        ):
            selector = spec.get("selector")
            if not isinstance(selector, dict):
                continue
            found = spec.get("namespaceSelector")
            scope: dict[str, Any] = found if isinstance(found, dict) else {}
            ns = obj.namespace or ""
            if scope.get("any"):
                spaces = set(pods) | set(services)
            else:
                spaces = set(scope.get("matchNames") or [ns])
            if obj.kind == "ServiceMonitor":
                targets = [
                    s
                    for n in spaces
                    for s in services[n]
                    if matches(selector, _labels(s.body.get("metadata")))
                ]
                what = "Service"
            else:
                targets = [o for n in spaces for labels, o in pods[n] if matches(selector, labels)]
                what = "pod"
            if not targets:
                sev: Severity = (
                    "warning" if any(severity(n) == "warning" for n in spaces) else "error"
                )
                report(
                    obj,
                    ("spec", "selector"),
                    f"selector {_show(selector)} selects no {what} of the render in "
                    f"{', '.join(repr(n) for n in sorted(spaces))}",
                    sev,
                )
    return out


def _show(selector: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        if isinstance(expr, dict):
            parts.append(
                f"{expr.get('key')} {expr.get('operator')} {expr.get('values') or ''}".strip()
            )
    return "{" + ", ".join(parts) + "}"

"""Kind ``MonitoringStack``: a team's own Prometheus and Alertmanager, and its alert rules.

Rules are checked here, at validation, so that a broken rule fails the pull request
instead of going unevaluated: every ``expr`` is parsed by a real PromQL parser
(``promql-parser``), ``for`` and intervals must be Prometheus durations, group names
and alerts must be unique, and every alert must carry the required labels. Each
problem is raised at the field it concerns, so it reports that field's file:line:col.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError, ValidationError

from specc.spec.apps import _App
from specc.spec.base import (
    DNSLabel,
    DNSSubdomain,
    Labels,
    PortName,
    Quantity,
    SpecModel,
    Toleration,
)

# https://prometheus.io/docs/prometheus/latest/configuration/configuration/#duration
_DURATION = re.compile(
    r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$"
)
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def prometheus_duration(value: str) -> str:
    """Accept a Prometheus duration such as ``30s``, ``5m``, ``1h30m`` or ``15d``."""
    if value == "0":
        return value
    if not value or not _DURATION.match(value):
        raise ValueError(
            f"{value!r} is not a Prometheus duration (units ms, s, m, h, d, w, y, "
            "largest first, e.g. '30s', '5m', '1h30m', '15d')"
        )
    return value


def promql_expression(value: str) -> str:
    """Accept a PromQL expression that parses and whose selectors can match something."""
    import promql_parser  # lazily: only documents with rules pay for it

    text = value.strip()
    if not text:
        raise ValueError("expr is empty")
    try:
        tree = promql_parser.parse(text)
    except ValueError as exc:
        raise ValueError(f"PromQL: {exc}") from None
    problems: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            problems.extend(_matcher_problems(node))

    promql_parser.walk(tree, visit)
    if problems:
        raise ValueError(f"PromQL: {problems[0]}")
    result = _result_type(tree)
    if result in ("matrix", "string"):
        raise ValueError(
            f"PromQL: a rule's expression must give an instant vector or a scalar, "
            f"this one gives a {result} (wrap a range selector in a function such as rate())"
        )
    return value


def _matcher_problems(selector: Any) -> list[str]:
    """Return what makes a vector selector's label matchers wrong though they parse."""
    import promql_parser

    out: list[str] = []
    equal: dict[str, str] = {}
    for m in selector.matchers.matchers:
        if not _LABEL_NAME.match(m.name):
            out.append(f"{m.name!r} is not a valid label name")
        if m.op == promql_parser.MatchOp.Equal:
            seen = equal.setdefault(m.name, m.value)
            if seen != m.value:
                out.append(
                    f"selector {selector.prettify()} requires {m.name}={seen!r} and "
                    f"{m.name}={m.value!r} at once: it can never match"
                )
    if selector.name is not None and not _METRIC_NAME.match(selector.name):
        out.append(f"{selector.name!r} is not a valid metric name")
    return out


def _result_type(node: Any) -> str:
    import promql_parser

    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        return "matrix"
    if isinstance(node, promql_parser.StringLiteral):
        return "string"
    if isinstance(node, promql_parser.Call):
        return str(node.func.return_type).rsplit(".", 1)[-1].lower()
    return "vector"


def _label_names(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not _LABEL_NAME.match(key) or key.startswith("__"):
            raise ValueError(
                f"{key!r} is not a valid Prometheus label name (letters, digits and '_', "
                "not starting with a digit or '__')"
            )
    return value


def _template(text: str) -> str:
    if text.count("{{") != text.count("}}"):
        raise ValueError("unbalanced '{{' and '}}' in this template")
    return text


def _metric_name(value: str) -> str:
    if not _METRIC_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid metric name")
    return value


def _secret_key(value: str) -> str:
    if len(value) > 253 or not _SECRET_KEY.match(value):
        raise ValueError(f"{value!r} is not a valid Secret key")
    return value


Duration = Annotated[str, AfterValidator(prometheus_duration)]
PromQL = Annotated[str, AfterValidator(promql_expression)]
PromLabels = Annotated[dict[str, str], AfterValidator(_label_names)]
Annotations = dict[str, Annotated[str, AfterValidator(_template)]]
MetricName = Annotated[str, AfterValidator(_metric_name)]
SecretKey = Annotated[str, AfterValidator(_secret_key)]


def _located(errors: list[tuple[tuple[str | int, ...], str]]) -> ValidationError:
    """Return a ValidationError whose problems sit at the given places below the model.

    pydantic nests a ValidationError raised inside a model validator under the model's
    own location, so each problem reports the exact field it concerns.
    """
    return ValidationError.from_exception_data(
        "MonitoringStack",
        [
            {"type": PydanticCustomError("monitoring", message), "loc": loc, "input": None}
            for loc, message in errors
        ],
    )


class Rule(SpecModel):
    """An alerting rule (``alert``) or a recording rule (``record``)."""

    alert: MetricName | None = None
    record: MetricName | None = None
    expr: PromQL
    for_: Duration | None = Field(default=None, alias="for")
    keep_firing_for: Duration | None = None
    labels: PromLabels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        if (self.alert is None) == (self.record is None):
            raise ValueError("set exactly one of alert (an alerting rule) and record")
        if self.record is not None and (self.for_ or self.keep_firing_for or self.annotations):
            raise ValueError(
                f"recording rule {self.record!r}: for, keepFiringFor and annotations "
                "belong to alerting rules"
            )
        return self


class RuleGroup(SpecModel):
    name: Annotated[str, Field(min_length=1)]
    #: How often the group is evaluated (default: the stack's evaluationInterval).
    interval: Duration | None = None
    rules: Annotated[list[Rule], Field(min_length=1)]


class Rules(SpecModel):
    #: Labels every alert must carry, e.g. ``severity`` for routing.
    required_labels: list[str] = Field(default_factory=lambda: ["severity"])
    groups: list[RuleGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_and_labelled(self) -> Rules:
        errors: list[tuple[tuple[str | int, ...], str]] = []
        groups: dict[str, int] = {}
        for gi, group in enumerate(self.groups):
            if group.name in groups:
                errors.append(
                    (
                        ("groups", gi, "name"),
                        f"rule group {group.name!r} is already defined as groups[{groups[group.name]}]",
                    )
                )
            groups.setdefault(group.name, gi)
            # The same alert may stand twice with different labels (warning and
            # critical thresholds); twice with the same labels it is a copy.
            seen: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
            for ri, rule in enumerate(group.rules):
                name = rule.alert or rule.record or ""
                key = (name, tuple(sorted(rule.labels.items())))
                field_name = "alert" if rule.alert else "record"
                if key in seen:
                    errors.append(
                        (
                            ("groups", gi, "rules", ri, field_name),
                            f"{field_name} {name!r} with the same labels is already defined "
                            f"as groups[{gi}].rules[{seen[key]}]",
                        )
                    )
                seen.setdefault(key, ri)
                if rule.alert is None:
                    continue
                missing = [lb for lb in self.required_labels if lb not in rule.labels]
                if missing:
                    where: tuple[str | int, ...] = ("groups", gi, "rules", ri)
                    where += ("labels",) if "labels" in rule.model_fields_set else ("alert",)
                    errors.append(
                        (
                            where,
                            f"alert {rule.alert!r} lacks the required label(s) "
                            f"{', '.join(missing)} (required by rules.requiredLabels)",
                        )
                    )
        if errors:
            raise _located(errors)
        return self


class Volume(SpecModel):
    size: Quantity
    storage_class_name: str | None = None


class PrometheusSettings(SpecModel):
    """The Prometheus servers: replicas scrape the same targets (HA pair by default)."""

    replicas: Annotated[int, Field(ge=1)] = 2
    #: How long samples are kept; the volume size bounds it too (retentionSize).
    retention: Duration = "15d"
    storage: Volume
    #: Memory request and limit of each server (equal: Prometheus must not be OOM-killed
    #: for using memory it was promised).
    memory: Quantity = "2Gi"
    cpu: Quantity | None = None
    scrape_interval: Duration = "30s"
    evaluation_interval: Duration = "30s"
    #: Labels added to every series and alert leaving this stack.
    external_labels: PromLabels = Field(default_factory=dict)


class SecretKeyRef(SpecModel):
    """A key of a Secret that exists in the team's namespace; never the value."""

    secret: DNSSubdomain
    key: SecretKey


class SlackReceiver(SpecModel):
    #: The Secret key holding the webhook URL.
    url: SecretKeyRef
    channel: str | None = None


class PagerDutyReceiver(SpecModel):
    #: The Secret key holding the Events API v2 routing key.
    routing_key: SecretKeyRef


class WebhookReceiver(SpecModel):
    #: The Secret key holding the URL (URLs often carry tokens).
    url: SecretKeyRef


class Receiver(SpecModel):
    """Where alerts go; exactly one of slack, pagerduty, webhook."""

    name: DNSLabel
    slack: SlackReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None
    webhook: WebhookReceiver | None = None
    #: Route alerts whose labels equal these here (e.g. ``severity: critical``);
    #: without it the receiver gets only what the default route sends it.
    match: PromLabels = Field(default_factory=dict)
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one(self) -> Receiver:
        given = [k for k in ("slack", "pagerduty", "webhook") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"receiver {self.name!r}: set exactly one of slack, pagerduty and webhook"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


class AlertmanagerSettings(SpecModel):
    """The Alertmanager cluster: replicas gossip, so each alert is sent once."""

    replicas: Annotated[int, Field(ge=1)] = 3
    retention: Duration = "120h"
    storage: Volume | None = None
    memory: Quantity = "256Mi"
    receivers: list[Receiver] = Field(default_factory=list)
    #: The receiver of alerts no ``match`` catches (default: the first receiver).
    default_receiver: DNSLabel | None = None
    group_by: list[str] = Field(default_factory=lambda: ["alertname", "namespace"])

    @model_validator(mode="after")
    def _receivers(self) -> AlertmanagerSettings:
        errors: list[tuple[tuple[str | int, ...], str]] = []
        names: dict[str, int] = {}
        for i, r in enumerate(self.receivers):
            if r.name in names:
                errors.append(
                    (
                        ("receivers", i, "name"),
                        f"receiver {r.name!r} is already defined as receivers[{names[r.name]}]",
                    )
                )
            names.setdefault(r.name, i)
        if self.default_receiver is not None and self.default_receiver not in names:
            known = ", ".join(names) or "none defined"
            errors.append(
                (("defaultReceiver",), f"no receiver named {self.default_receiver!r} ({known})")
            )
        if errors:
            raise _located(errors)
        return self


class ScrapeTarget(SpecModel):
    """Services (→ ServiceMonitor) or pods (→ PodMonitor) chosen by their labels."""

    name: DNSLabel
    selector: Annotated[Labels, Field(min_length=1)]
    port: PortName
    path: str = "/metrics"
    interval: Duration | None = None


class Scrape(SpecModel):
    #: Scrape every port marked ``metrics: true`` in this team's Service and
    #: StatefulService specs (on the clusters this stack is placed on).
    app_ports: bool = True
    services: list[ScrapeTarget] = Field(default_factory=list)
    pods: list[ScrapeTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Scrape:
        errors: list[tuple[tuple[str | int, ...], str]] = []
        for field_name in ("services", "pods"):
            seen: set[str] = set()
            for i, t in enumerate(getattr(self, field_name)):
                if t.name in seen:
                    errors.append(
                        ((field_name, i, "name"), f"{field_name} target {t.name!r} is used twice")
                    )
                seen.add(t.name)
        if errors:
            raise _located(errors)
        return self


class MonitoringStackSpec(SpecModel):
    prometheus: PrometheusSettings
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    scrape: Scrape = Field(default_factory=Scrape)
    rules: Rules = Field(default_factory=Rules)
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] = Field(default_factory=list)


class MonitoringStack(_App):
    kind: Literal["MonitoringStack"]
    spec: MonitoringStackSpec

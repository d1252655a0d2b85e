"""Kind ``MonitoringStack``: a team's own Prometheus and Alertmanager, and its alert rules.

Rule groups are written as in a Prometheus rule file (``keep_firing_for``,
``query_offset``, ``limit``, group ``labels``), so that a team can paste one, and are
checked here, at validation, as Prometheus 3 checks them: every ``expr`` is parsed as
Prometheus parses it (:mod:`specc.promql`), every alert's labels and annotations as
Go templates with Prometheus's functions (:mod:`specc.gotemplate`), durations as
Prometheus durations, group names must be unique. specc adds one rule of its own:
every alert carries the required labels. Each problem is raised at the field it
concerns, and a problem inside an expression or a template at its own line and column.
"""

import re
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)
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
    """Accept a PromQL expression that Prometheus 3 parses (see :mod:`specc.promql`).

    A problem is raised with its offset in the value (context key ``specc_offset``),
    so that it is reported at its own line and column inside a multi-line ``expr``.
    """
    # At run time, so that its source is no part of the models' stored schemas.
    from specc.rulecheck import promql_problem

    if not value.strip():
        raise ValueError("field 'expr' must be set in rule")
    problem = promql_problem(value)
    if problem is not None:
        raise PydanticCustomError(
            "promql", "PromQL: " + problem.message, {"specc_offset": problem.pos}
        )
    return value


def _label_names(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if not _LABEL_NAME.match(key) or key.startswith("__"):
            raise ValueError(
                f"{key!r} is not a valid Prometheus label name (letters, digits and '_', "
                "not starting with a digit or '__')"
            )
    return value


def _secret_key(value: str) -> str:
    if len(value) > 253 or not _SECRET_KEY.match(value):
        raise ValueError(f"{value!r} is not a valid Secret key")
    return value


Duration = Annotated[str, AfterValidator(prometheus_duration)]
PromLabels = Annotated[dict[str, str], AfterValidator(_label_names)]
SecretKey = Annotated[str, AfterValidator(_secret_key)]


def _located_at(errors: list[tuple[tuple[str | int, ...], str, int | None]]) -> ValidationError:
    """Return :func:`_located`'s error, each problem optionally at an offset in its value."""
    return ValidationError.from_exception_data(
        "MonitoringStack",
        [
            {
                "type": PydanticCustomError(
                    "monitoring", message, {} if offset is None else {"specc_offset": offset}
                ),
                "loc": loc,
                "input": None,
            }
            for loc, message, offset in errors
        ],
    )


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


def _as_text(value: Any) -> Any:
    """Prometheus reads a number or boolean where a rule wants text as the text written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _text_map(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_text(v) for k, v in value.items()}
    return value


RuleText = Annotated[str, BeforeValidator(_as_text)]
RuleLabels = Annotated[dict[str, RuleText], BeforeValidator(_text_map)]


class _PrometheusForm(SpecModel):
    """A model spelled as Prometheus's rule files and PrometheusRule objects spell it."""

    model_config = ConfigDict(extra="forbid", alias_generator=None, validate_default=False)


class Rule(_PrometheusForm):
    """An alerting rule (``alert``) or a recording rule (``record``), as in a rule file."""

    #: Any non-empty text: Prometheus does not restrict alert names.
    alert: RuleText | None = None
    record: RuleText | None = None
    expr: Annotated[RuleText, AfterValidator(promql_expression)]
    for_: Duration | None = Field(default=None, alias="for")
    keep_firing_for: Duration | None = Field(
        default=None, validation_alias=AliasChoices("keep_firing_for", "keepFiringFor")
    )
    labels: RuleLabels = Field(default_factory=dict)
    annotations: RuleLabels = Field(default_factory=dict)

    @model_validator(mode="after")
    def _as_prometheus_reads_it(self) -> Self:
        # model/rulefmt's Rule.Validate, in its words.
        errors: list[tuple[tuple[str | int, ...], str, int | None]] = []
        if self.alert and self.record:
            errors.append((("record",), "only one of 'record' and 'alert' must be set", None))
        elif not self.alert and not self.record:
            errors.append(((), "one of 'record' or 'alert' must be set", None))
        if self.record:
            for name, value in (
                ("annotations", self.annotations),
                ("for", self.for_ not in (None, "0", "0s") and self.for_),
                ("keep_firing_for", self.keep_firing_for not in (None, "0", "0s")),
            ):
                if value:
                    errors.append((("record",), f"invalid field {name!r} in recording rule", None))
            if "{" in self.record or "}" in self.record:
                errors.append(
                    (
                        ("record",),
                        "braces present in the recording rule name; should it be in expr?: "
                        + self.record,
                        None,
                    )
                )
        for key in self.labels:
            if not key or key == "__name__":
                errors.append((("labels", key), f"invalid label name: {key}", None))
        for key in self.annotations:
            if not key:
                errors.append((("annotations", key), f"invalid annotation name: {key}", None))
        if self.alert:
            from specc.rulecheck import template_problem

            for field_name, values in (("labels", self.labels), ("annotations", self.annotations)):
                for key, text in values.items():
                    problem = template_problem(text)
                    if problem is not None:
                        what = "label" if field_name == "labels" else "annotation"
                        errors.append(
                            (
                                (field_name, key),
                                f"{what} {key!r}: template: {problem.message}",
                                problem.pos,
                            )
                        )
        if errors:
            raise _located_at(errors)
        return self


class RuleGroup(_PrometheusForm):
    """A rule group, with every field Prometheus and PrometheusRule accept."""

    name: Annotated[str, Field(min_length=1)]
    #: How often the group is evaluated (default: the stack's evaluationInterval).
    interval: Duration | None = None
    query_offset: Duration | None = Field(
        default=None, validation_alias=AliasChoices("query_offset", "queryOffset")
    )
    #: Alerts or series one evaluation may produce; 0: no limit.
    limit: Annotated[int, Field(ge=0)] | None = None
    #: Labels added to every rule of the group (a rule's own win).
    labels: RuleLabels = Field(default_factory=dict)
    #: Thanos Ruler's; prometheus-operator passes it through.
    partial_response_strategy: Annotated[str, Field(pattern=r"^(?i)(abort|warn)?$")] | None = None
    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _labels(self) -> Self:
        bad = [k for k in self.labels if not k or k == "__name__"]
        if bad:
            raise _located_at([(("labels", k), f"invalid label name: {k}", None) for k in bad])
        return self


def _default_required_labels() -> list[str]:
    return ["severity"]


def _default_group_by() -> list[str]:
    return ["alertname", "namespace"]


class Rules(SpecModel):
    #: Labels every alert must carry, e.g. ``severity`` for routing.
    required_labels: list[str] = Field(default_factory=_default_required_labels)
    #: Rule groups as in a Prometheus rule file (snake_case, as Prometheus spells them).
    groups: list[RuleGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_and_labelled(self) -> Self:
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
            for ri, rule in enumerate(group.rules):
                if rule.alert is None:
                    continue
                labels = {**group.labels, **rule.labels}
                missing = [lb for lb in self.required_labels if lb not in labels]
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


class PrometheusRuleSpec(_PrometheusForm):
    """The spec of a PrometheusRule object given whole (Manifests): its groups.

    Other fields are the CRD schema's business (a fleet may ship its own CRD).
    """

    model_config = ConfigDict(extra="ignore", alias_generator=None, validate_default=False)

    groups: list[RuleGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        names: dict[str, int] = {}
        errors: list[tuple[tuple[str | int, ...], str]] = []
        for gi, group in enumerate(self.groups):
            if group.name in names:
                errors.append(
                    (
                        ("groups", gi, "name"),
                        f"rule group {group.name!r} is already defined as groups[{names[group.name]}]",
                    )
                )
            names.setdefault(group.name, gi)
        if errors:
            raise _located(errors)
        return self


def rule_warnings(rules: Rules | PrometheusRuleSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """Return what Prometheus only warns about: rules repeated with the same labels.

    ``promtool check rules`` lints duplicates (same name and labels in a group) without
    failing: a widely used rule set splits one series by ``code`` this way.
    """
    out: list[tuple[tuple[str | int, ...], str]] = []
    for gi, group in enumerate(rules.groups):
        seen: dict[tuple[str, str, tuple[tuple[str, str], ...]], int] = {}
        for ri, rule in enumerate(group.rules):
            kind = "alert" if rule.alert else "record"
            name = rule.alert or rule.record or ""
            key = (kind, name, tuple(sorted(rule.labels.items())))
            if key in seen:
                out.append(
                    (
                        ("groups", gi, "rules", ri, kind),
                        f"{kind} {name!r} with the same labels is already defined as "
                        f"groups[{gi}].rules[{seen[key]}] (Prometheus evaluates both)",
                    )
                )
            seen.setdefault(key, ri)
    return out


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
    def _one(self) -> Self:
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
    group_by: list[str] = Field(default_factory=_default_group_by)

    @model_validator(mode="after")
    def _receivers(self) -> Self:
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
    def _unique(self) -> Self:
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

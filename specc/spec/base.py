"""Field types and small models shared by every spec kind."""

import functools
import re
import typing
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from specc.quantity import canonical_quantity, parse_quantity

API_VERSION = "specc.dev/v1alpha1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IANA_SVC = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")
_IMAGE_NAME = re.compile(
    r"^[a-zA-Z0-9][a-zA-Z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$"
)


class SpecModel(BaseModel):
    """Base of every spec model: camelCase keys, unknown fields refused."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        # Only the camelCase names the schemas publish: `zone_spread` is a typo to report.
        validate_default=False,
        # Built by specc.spec.prebuilt once every model is defined, from stored schemas.
        defer_build=True,
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        MODELS.append(cls)


#: Every spec model, in the order they were defined (a model's fields' models first).
MODELS: list[type[SpecModel]] = []


def dns_label(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"{value!r} is longer than 63 characters")
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return value


def dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{value!r} is not a DNS-1123 subdomain")
    return value


def port_name(value: str) -> str:
    if len(value) > 15 or not _IANA_SVC.match(value) or "--" in value:
        raise ValueError(
            f"{value!r} is not a valid port name (at most 15 lower-case letters, digits, '-')"
        )
    return value


def env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid environment variable name")
    return value


def config_key(value: str) -> str:
    if len(value) > 253 or not _CONFIG_KEY.match(value) or value in (".", ".."):
        raise ValueError(f"{value!r} is not a valid ConfigMap key")
    return value


def image_reference(value: str) -> str:
    """Accept ``name:tag`` or ``name@digest``; refuse a missing tag and ``latest``."""
    name, at, digest = value.partition("@")
    if at and not _DIGEST.match(digest):
        raise ValueError(f"image {value!r} has an invalid digest")
    last = name.rsplit("/", 1)[-1]
    _, colon, tag = last.rpartition(":") if ":" in last else (last, "", "")
    if colon:
        if not _TAG.match(tag):
            raise ValueError(f"image {value!r} has an invalid tag {tag!r}")
        if tag == "latest":
            raise ValueError(
                f"image {value!r} uses the tag 'latest': pin a version or a digest "
                "so that a commit always means the same pods"
            )
        name = name[: len(name) - len(tag) - 1]
    elif not at:
        raise ValueError(
            f"image {value!r} has no tag or digest: pin a version (name:1.2.3) or a digest"
        )
    if not _IMAGE_NAME.match(name):
        raise ValueError(f"image {value!r} has an invalid repository name")
    return value


def label_map(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        problem = _label_problem(key, val)
        if problem:
            raise ValueError(problem)
    return value


# The same few labels (name, team, managed-by) are checked on every object of every
# cluster: ~1,000 times for the example fleet.
@functools.lru_cache(maxsize=4096)
def _label_problem(key: str, val: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {key!r} has an invalid prefix"
    if len(name) > 63 or not _LABEL_KEY_NAME.match(name):
        return f"label key {key!r} is not valid"
    if len(val) > 63 or not _LABEL_VALUE.match(val):
        return f"label value {val!r} of {key!r} is not valid"
    return ""


def _quantity(value: Any) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("expected a quantity such as 500m, 2, 128Mi or 10Gi")
    out = canonical_quantity(value)
    if out.startswith("-"):
        raise ValueError(f"quantity {value!r} must not be negative")
    return out


def _stringify(value: Any) -> Any:
    # `PORT: 8080` in YAML is an int; Kubernetes wants the string the user meant.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def keeps_text(annotation: Any) -> bool:
    """Return whether ``annotation`` is, or holds, :data:`StrValue` (see validate._restore_texts)."""
    for arg in (*typing.get_args(annotation), *getattr(annotation, "__metadata__", ())):
        if isinstance(arg, BeforeValidator) and arg.func is _stringify:
            return True
        if keeps_text(arg):
            return True
    return False


_QUANTITY_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "pattern": r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?$",
        },
        {"type": "number", "minimum": 0},
    ],
    "description": "A Kubernetes quantity, e.g. 500m, 2, 128Mi, 10Gi.",
}

Quantity = Annotated[str, BeforeValidator(_quantity), WithJsonSchema(_QUANTITY_SCHEMA)]
DNSLabel = Annotated[str, AfterValidator(dns_label)]
DNSSubdomain = Annotated[str, AfterValidator(dns_subdomain)]
PortName = Annotated[str, AfterValidator(port_name)]
EnvName = Annotated[str, AfterValidator(env_name)]
ConfigKey = Annotated[str, AfterValidator(config_key)]
Image = Annotated[str, AfterValidator(image_reference)]
Labels = Annotated[dict[str, str], AfterValidator(label_map)]
StrValue = Annotated[
    str,
    BeforeValidator(_stringify),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
PortNumber = Annotated[int, Field(ge=1, le=65535)]


def _port_ref(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= 65535:
            raise ValueError(f"port {value} is not between 1 and 65535")
        return value
    if isinstance(value, str):
        return port_name(value)
    raise ValueError("expected a port number (1-65535) or the name of a port")


#: A port by number or by the name of one of the app's ports.
PortRef = Annotated[
    int | str,
    # Not PlainValidator: its serializer is a closure, which the stored schemas cannot name.
    BeforeValidator(_port_ref),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 65535},
                {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 15},
            ]
        }
    ),
]


class Metadata(SpecModel):
    """Names the document; apps also name their owning team."""

    name: DNSLabel
    labels: Labels = Field(default_factory=dict)


#: Labels specc sets on an app's objects from its name and team: the selector label
#: (a Deployment's selector would no longer match its own pods), ownership and team.
_APP_OWN_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/managed-by")


def _app_labels(value: dict[str, str]) -> dict[str, str]:
    for key in value:
        if key.startswith("specc.dev/") or key in _APP_OWN_LABELS:
            raise ValueError(f"label {key!r} is specc's own (set from the app's name and team)")
    return value


class AppMetadata(Metadata):
    team: DNSLabel
    #: Labels added to every object rendered from this document.
    labels: Annotated[Labels, AfterValidator(_app_labels)] = Field(default_factory=dict)


class ResourceList(SpecModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None
    ephemeral_storage: Quantity | None = Field(default=None, alias="ephemeral-storage")


class Resources(SpecModel):
    requests: ResourceList | None = None
    limits: ResourceList | None = None

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Self:
        if self.requests is None or self.limits is None:
            return self
        for name in ("cpu", "memory", "ephemeral_storage"):
            r, lm = getattr(self.requests, name), getattr(self.limits, name)
            if (
                r is not None
                and lm is not None
                and parse_quantity(r).value > parse_quantity(lm).value
            ):
                raise ValueError(f"{name} request {r} exceeds its limit {lm}")
        return self


class Port(SpecModel):
    name: PortName
    port: PortNumber
    target_port: PortNumber | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    #: Scraped by a team's MonitoringStack.
    metrics: bool = False


class Probe(SpecModel):
    """An HTTP GET (``path``), exec (``command``) or TCP (neither) probe."""

    port: PortRef | None = None
    path: str | None = None
    command: list[str] | None = None
    initial_delay_seconds: Annotated[int, Field(ge=0)] | None = None
    period_seconds: Annotated[int, Field(ge=1)] | None = None
    timeout_seconds: Annotated[int, Field(ge=1)] | None = None
    failure_threshold: Annotated[int, Field(ge=1)] | None = None


class Probes(SpecModel):
    readiness: Probe | None = None
    liveness: Probe | None = None
    startup: Probe | None = None


class SecretRef(SpecModel):
    """A reference to a Secret that exists in the cluster; never a secret value."""

    secret: DNSSubdomain
    key: str | None = None
    env: EnvName | None = None
    mount_path: str | None = None


class Toleration(SpecModel):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class Placement(SpecModel):
    """Which clusters get an app: every given condition must hold."""

    environments: list[DNSLabel] | None = None
    clusters: list[DNSLabel] | None = None
    selector: Labels | None = None


class Overrides(SpecModel):
    """Partial specs of the app's own kind, deep-merged base → environment → cluster."""

    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    clusters: dict[str, dict[str, Any]] = Field(default_factory=dict)

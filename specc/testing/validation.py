"""Object validation with the API server's field errors (``details.causes``).

Three layers, in the order the API server reports them: object metadata (name and label
syntax), the schema (required fields and enums from the Kubernetes JSON schema, or the
CRD's ``openAPIV3Schema`` with kube-openapi's messages), then the few kind-specific
rules sync relies on (workload selectors matching their template, immutable selectors).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs

from specc.testing.quantity import parse_quantity
from specc.testing.schema import SCHEMA_VERSION

_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{_SUBDOMAIN}')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{_LABEL}')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
    "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    f"'abc-123', regex used for validation is '{_DNS1035}')"
)
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


@dataclass(frozen=True)
class Cause:
    """One field error: ``reason`` (FieldValueInvalid…), ``message`` and the field path."""

    reason: str
    message: str
    field: str

    def to_dict(self) -> dict[str, str]:
        """Return the cause as it appears in ``Status.details.causes``."""
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def render_value(value: Any) -> str:
    """Return a value as Go's field errors print it (strings quoted, objects as JSON)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def invalid(field: str, value: Any, detail: str) -> Cause:
    """Return a ``FieldValueInvalid`` cause."""
    return Cause("FieldValueInvalid", f"Invalid value: {render_value(value)}: {detail}", field)


def required(field: str, detail: str = "") -> Cause:
    """Return a ``FieldValueRequired`` cause."""
    return Cause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), field)


def _check_name(name: str, style: str) -> list[str]:
    if style == "path":
        if name in (".", ".."):
            return [f"may not be '{name}'"]
        return [f"may not contain '{c}'" for c in "/%" if c in name]
    pattern, message, limit = {
        "subdomain": (_SUBDOMAIN, _SUBDOMAIN_MSG, 253),
        "label": (_LABEL, _LABEL_MSG, 63),
        "dns1035": (_DNS1035, _DNS1035_MSG, 63),
    }[style]
    problems = []
    if len(name) > limit:
        problems.append(f"must be no more than {limit} characters")
    if not re.fullmatch(pattern, name):
        problems.append(message)
    return problems


# How each kind's name is validated (pkg/apis/core/validation ValidateXName functions).
NAME_STYLE: dict[tuple[str, str], str] = {
    ("", "Namespace"): "label",
    ("", "Service"): "dns1035",
    ("rbac.authorization.k8s.io", "Role"): "path",
    ("rbac.authorization.k8s.io", "RoleBinding"): "path",
    ("rbac.authorization.k8s.io", "ClusterRole"): "path",
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): "path",
}


def _check_labels(labels: Any, field: str) -> list[Cause]:
    causes: list[Cause] = []
    if not isinstance(labels, dict):
        return causes
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if (
            (prefix and _check_name(prefix, "subdomain"))
            or not re.fullmatch(_QUALIFIED_NAME, name)
            or len(name) > 63
        ):
            causes.append(
                invalid(
                    field,
                    key,
                    "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                    "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
                    f"or '123-abc', regex used for validation is '{_QUALIFIED_NAME}')",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(_LABEL_VALUE, value):
            causes.append(
                invalid(
                    field,
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                    f"'MyValue',  or 'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')",
                )
            )
    return causes


def validate_metadata(group: str, kind: str, obj: dict[str, Any]) -> list[Cause]:
    """Return the metadata errors of ``obj`` (name syntax, labels)."""
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    name = meta.get("name")
    if not name:
        if not meta.get("generateName"):
            causes.append(required("metadata.name", "name or generateName is required"))
    else:
        style = NAME_STYLE.get((group, kind), "subdomain")
        for problem in _check_name(str(name), style):
            causes.append(invalid("metadata.name", name, problem))
    causes.extend(_check_labels(meta.get("labels"), "metadata.labels"))
    return causes


@cache
def _definitions() -> dict[str, Any]:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    with (root / f"{SCHEMA_VERSION}-local-strict" / "_definitions.json").open("rb") as handle:
        document: dict[str, Any] = json.load(handle)
    definitions: dict[str, Any] = document["$defs"]
    return definitions


@cache
def builtin_validator(definition: str) -> Any:
    """Return a cached JSON-schema validator for one built-in definition."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/$defs/{definition}",
        "$defs": _definitions(),
    }
    return jsonschema_rs.validator_for(schema)


def crd_validator(schema: dict[str, Any]) -> Any:
    """Return a validator for a CRD version's ``openAPIV3Schema`` (OpenAPI 3.0 ≈ draft 4)."""
    return jsonschema_rs.Draft4Validator(schema)


def _join(path: list[str | int]) -> str:
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        else:
            out += ("." if out else "") + element
    return out


def schema_causes(validator: Any, obj: dict[str, Any], custom: bool) -> list[Cause]:
    """Return the schema errors of ``obj`` as field causes, worded like kube-openapi's."""
    causes: list[Cause] = []
    for error in validator.iter_errors(obj):
        path = list(error.instance_path)
        field = _join(path)
        value = error.instance
        name = error.kind.name
        if name == "required":
            missing = error.kind.property
            causes.append(required(f"{field}.{missing}" if field else str(missing)))
        elif name == "enum":
            options = ", ".join(render_value(o) for o in error.kind.options)
            causes.append(
                Cause(
                    "FieldValueNotSupported",
                    f"Unsupported value: {render_value(value)}: supported values: {options}",
                    field,
                )
            )
        elif not custom:
            # Types and unknown fields were checked when the object was decoded.
            continue
        elif name in ("minimum", "exclusiveMinimum"):
            relation = "greater than" if name == "exclusiveMinimum" else "greater than or equal to"
            causes.append(
                invalid(field, value, f"{field} in body should be {relation} {error.kind.limit}")
            )
        elif name in ("maximum", "exclusiveMaximum"):
            relation = "less than" if name == "exclusiveMaximum" else "less than or equal to"
            causes.append(
                invalid(field, value, f"{field} in body should be {relation} {error.kind.limit}")
            )
        elif name == "type":
            expected = _expected_type(error.message)
            causes.append(
                invalid(
                    field,
                    value,
                    f"{field} in body must be of type {expected}: {render_value(value)}",
                )
            )
        elif name == "pattern":
            causes.append(
                invalid(field, value, f"{field} in body should match '{error.kind.pattern}'")
            )
        elif name == "minLength":
            causes.append(
                invalid(
                    field,
                    value,
                    f"{field} in body should be at least {error.kind.limit} chars long",
                )
            )
        elif name == "maxLength":
            causes.append(
                Cause(
                    "FieldValueTooLong",
                    f"Too long: may not be more than {error.kind.limit} bytes",
                    field,
                )
            )
        elif name == "minItems":
            causes.append(
                invalid(
                    field, value, f"{field} in body should have at least {error.kind.limit} items"
                )
            )
        elif name == "maxItems":
            causes.append(
                Cause(
                    "FieldValueTooMany",
                    f"Too many: {len(value)}: must have at most {error.kind.limit} items",
                    field,
                )
            )
        else:
            causes.append(invalid(field, value, error.message))
    return causes


def _expected_type(message: str) -> str:
    match = re.search(r'of type "?([a-z]+)"?', message)
    return match.group(1) if match else "object"


def _selector_matches(selector: Any, labels: dict[str, Any]) -> bool:
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return True
    for key, value in match_labels.items():
        if labels.get(key) != value:
            return False
    for expr in expressions:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


#: ValidateStatefulSetUpdate's words (kube-apiserver 1.36): volumeClaimTemplates,
#: serviceName, selector and podManagementPolicy are fixed once created.
_STATEFULSET_FORBIDDEN = (
    "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
    "'template', 'updateStrategy', 'revisionHistoryLimit', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)

#: ValidatePersistentVolumeClaimUpdate's words (kube-apiserver 1.36).
_PVC_IMMUTABLE = (
    "Forbidden: spec is immutable after creation except resources.requests and "
    "volumeAttributesClassName for bound claims"
)


def storage_of(obj: dict[str, Any], *path: str) -> Fraction | None:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, str | int):
        return None
    try:
        return parse_quantity(str(node))[0]
    except ValueError:
        return None


def _fixed_part(claim: dict[str, Any], bound: bool) -> dict[str, Any]:
    spec = dict(claim.get("spec") or {})
    if bound:
        spec.pop("volumeAttributesClassName", None)
        resources = dict(spec.get("resources") or {})
        resources.pop("requests", None)
        spec["resources"] = resources
    return spec


def pvc_update_causes(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """Return why a PersistentVolumeClaim update is refused: only a bound claim's
    storage request may change, and never below its status.capacity."""
    bound = (old.get("status") or {}).get("phase") == "Bound"
    if _fixed_part(obj, bound) != _fixed_part(old, bound):
        return [Cause("FieldValueForbidden", _PVC_IMMUTABLE, "spec")]
    requested = storage_of(obj, "spec", "resources", "requests", "storage")
    capacity = storage_of(old, "status", "capacity", "storage")
    if bound and requested is not None and capacity is not None and requested < capacity:
        return [
            Cause(
                "FieldValueForbidden",
                "Forbidden: field can not be less than status.capacity",
                "spec.resources.requests.storage",
            )
        ]
    return []


_WORKLOADS = {
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
}


def validate_kind(
    group: str, kind: str, obj: dict[str, Any], old: dict[str, Any] | None
) -> list[Cause]:
    """Return the kind-specific errors (selectors, immutable fields) of a create or update."""
    causes: list[Cause] = []
    spec = obj.get("spec") or {}
    if (group, kind) in _WORKLOADS:
        template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        selector = spec.get("selector")
        if (
            isinstance(selector, dict)
            and not selector.get("matchLabels")
            and not selector.get("matchExpressions")
        ):
            causes.append(
                invalid("spec.selector", selector, "empty selector is invalid for deployment")
            )
        if not _selector_matches(selector, template_labels):
            causes.append(
                invalid(
                    "spec.template.metadata.labels",
                    template_labels,
                    "`selector` does not match template `labels`",
                )
            )
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
        # A StatefulSet's selector is covered by the whole-spec rule below instead.
        if old is not None and kind != "StatefulSet":
            old_selector = (old.get("spec") or {}).get("selector")
            if selector != old_selector:
                causes.append(invalid("spec.selector", selector, "field is immutable"))
    if (group, kind) == ("", "PersistentVolumeClaim") and old is not None:
        causes.extend(pvc_update_causes(obj, old))
    if (group, kind) == ("apps", "StatefulSet") and old is not None:
        mutable = {
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
        }
        old_spec = old.get("spec") or {}
        if {k: v for k, v in spec.items() if k not in mutable} != {
            k: v for k, v in old_spec.items() if k not in mutable
        }:
            causes.append(Cause("FieldValueForbidden", _STATEFULSET_FORBIDDEN, "spec"))
    if (group, kind) == ("batch", "Job"):
        policy = (((spec.get("template") or {}).get("spec")) or {}).get("restartPolicy")
        if policy not in ("OnFailure", "Never"):
            causes.append(
                Cause(
                    "FieldValueNotSupported",
                    f'Unsupported value: {render_value(policy)}: supported values: "OnFailure", "Never"',
                    "spec.template.spec.restartPolicy",
                )
            )
    if (group, kind) == ("apiextensions.k8s.io", "CustomResourceDefinition"):
        names = spec.get("names") or {}
        expected = f"{names.get('plural', '')}.{spec.get('group', '')}"
        name = (obj.get("metadata") or {}).get("name")
        if name != expected:
            causes.append(
                invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
            )
        causes.extend(_crd_schema_causes(spec))
    if (group, kind) == ("", "Service") and old is not None:
        new_ip = spec.get("clusterIP")
        old_ip = (old.get("spec") or {}).get("clusterIP")
        if new_ip and old_ip and new_ip != old_ip:
            causes.append(invalid("spec.clusterIPs[0]", new_ip, "may not change once set"))
    return causes


def _crd_schema_causes(spec: dict[str, Any]) -> list[Cause]:
    """Return the structural-schema errors of a CRD's version schemas that the double checks.

    Like apiextensions, when every version has the same schema it is validated once, as
    the internal ``spec.validation`` (the path the real server reports).
    """
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    schemas = [(v.get("schema") or {}).get("openAPIV3Schema") for v in versions]
    if schemas and all(s == schemas[0] for s in schemas):
        located = [("spec.validation.openAPIV3Schema", schemas[0])]
    else:
        located = [
            (f"spec.versions[{i}].schema.openAPIV3Schema", schema)
            for i, schema in enumerate(schemas)
        ]
    causes: list[Cause] = []
    for path, schema in located:
        if isinstance(schema, dict):
            _walk_schema(schema, path, causes)
    return causes


def _walk_schema(node: dict[str, Any], path: str, causes: list[Cause]) -> None:
    items = node.get("items")
    if node.get("x-kubernetes-list-type") == "map" and isinstance(items, dict):
        required_keys = set(items.get("required") or [])
        properties = items.get("properties") or {}
        for key in node.get("x-kubernetes-list-map-keys") or []:
            prop = properties.get(key)
            if isinstance(prop, dict) and key not in required_keys and "default" not in prop:
                causes.append(
                    required(
                        f"{path}.items.properties[{key}].default",
                        "this property is in x-kubernetes-list-map-keys, so it must have "
                        "a default or be a required property",
                    )
                )
    for name, child in (node.get("properties") or {}).items():
        if isinstance(child, dict):
            _walk_schema(child, f"{path}.properties[{name}]", causes)
    if isinstance(items, dict):
        _walk_schema(items, f"{path}.items", causes)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _walk_schema(extra, f"{path}.additionalProperties", causes)

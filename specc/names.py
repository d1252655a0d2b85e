"""Object names as the API server checks them, per kind.

Each kind's rule is the name function its ``Validate…`` passes to ``ValidateObjectMeta``
in k8s.io/kubernetes (pkg/apis/*/validation, v1.36): most kinds take a DNS-1123
subdomain, Namespace and StatefulSet a DNS-1123 label, Service an RFC 1035 label, the
RBAC kinds any path segment, CronJob a subdomain of at most 52 characters (its Jobs get
11 more), IPAddress the address itself, a CRD ``<plural>.<group>``. Every name is also
a path segment of its URL (no ``/``, ``%``, ``.`` or ``..``), as the request handlers check.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_LABEL_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
    "with an alphabetic character, and end with an alphanumeric character"
)

_RBAC = "rbac.authorization.k8s.io"
#: Kind.group → the rule its validation uses (default: subdomain).
_RULES = {
    "Namespace": "label",
    "StatefulSet.apps": "label",
    "Service": "label1035",
    f"Role.{_RBAC}": "segment",
    f"ClusterRole.{_RBAC}": "segment",
    f"RoleBinding.{_RBAC}": "segment",
    f"ClusterRoleBinding.{_RBAC}": "segment",
    "CertificateSigningRequest.certificates.k8s.io": "segment",
    "CronJob.batch": "cronjob",
    "IPAddress.networking.k8s.io": "ip",
}


def _segment(name: str) -> str:
    if name in (".", ".."):
        return f"may not be {name!r}"
    for bad in ("/", "%"):
        if bad in name:
            return f"may not contain {bad!r}"
    return ""


def name_problem(group_kind: str, name: str, body: dict[str, Any] | None = None) -> str:
    """Return why the API server refuses ``name`` for ``group_kind`` ("" when it accepts it)."""
    if not name:
        return "a name is required"
    segment = _segment(name)
    if segment:
        return f"{name!r} {segment} (it is a segment of the object's URL)"
    rule = _RULES.get(group_kind, "subdomain")
    if rule == "segment":
        return ""
    if rule == "ip":
        try:
            canonical = str(ipaddress.ip_address(name))
        except ValueError:
            return f"{name!r} must be an IP address"
        if canonical != name:
            return f"{name!r} must be in canonical form ({canonical!r})"
        return ""
    if rule in ("label", "label1035"):
        pattern, msg = (_LABEL, _LABEL_MSG) if rule == "label" else (_LABEL_1035, _LABEL_1035_MSG)
        if len(name) > 63:
            return f"{name!r} must be no more than 63 characters"
        if not pattern.match(name):
            return f"{name!r}: {msg}"
        return ""
    if len(name) > 253:
        return f"{name!r} must be no more than 253 characters"
    if not _SUBDOMAIN.match(name):
        return f"{name!r}: {_SUBDOMAIN_MSG}"
    if rule == "cronjob" and len(name) > 52:
        return (
            f"{name!r} must be no more than 52 characters "
            "(the Jobs of a CronJob get an 11-character suffix)"
        )
    if group_kind == "CustomResourceDefinition.apiextensions.k8s.io" and body is not None:
        spec = body.get("spec")
        names = spec.get("names") if isinstance(spec, dict) else None
        plural = names.get("plural") if isinstance(names, dict) else None
        group = spec.get("group") if isinstance(spec, dict) else None
        if isinstance(plural, str) and isinstance(group, str) and name != f"{plural}.{group}":
            return f"{name!r} must be spec.names.plural+'.'+spec.group ({plural}.{group})"
    return ""


def metadata_key_problems(meta: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Return (field, key, why) for each label or annotation the API server refuses.

    Label keys and annotation keys are qualified names (an optional DNS-subdomain prefix
    and ``/``, then at most 63 characters); label values at most 63 characters of the
    same alphabet, as ValidateLabels and ValidateAnnotations check them.
    """
    from specc.spec.base import label_map

    out = []
    for field in ("labels", "annotations"):
        entries = meta.get(field)
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            probe = {str(key): str(value) if field == "labels" else ""}
            try:
                label_map(probe)
            except ValueError as exc:
                out.append((field, str(key), str(exc).replace("label key", f"{field[:-1]} key")))
    return out

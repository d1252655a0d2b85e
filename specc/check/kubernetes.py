"""Built-in Kubernetes kinds: strict JSON Schemas per Kubernetes version, compiled once.

The schemas are the ``-local-strict`` set of kubernetes-validate (every object
``additionalProperties: false``, definitions shared through one ``_definitions.json``
per version), copied into ``specc/data/kubernetes`` by ``tools/bundle_kube_schemas.py``:
that one file per version is all specc reads of the package's 108 MB. It is parsed once
per process and version, only when a check needs a kind the schema store
(:mod:`specc.check.store`) does not hold, and each kind gets one self-contained schema
(the root plus the definitions it reaches, ``$ref``s rewritten to local ``#/$defs/…``)
compiled once by ``jsonschema_rs``.

On top of the shipped schemas we add what the API server enforces and the
OpenAPI v2-derived schemas leave out: the quantity grammar, int32 bounds, and the
enumerations of a few well-known fields (see :data:`_ENUMS`).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from specc import DATA
from specc.cachedir import file_fingerprint
from specc.check import store

if TYPE_CHECKING:
    # Imported where a schema is compiled: a check whose every object has a kept verdict
    # (:mod:`specc.check.verdicts`) never loads the library, a tenth of a start.
    import jsonschema_rs

#: How kinds refer to the shared definitions of their version.
_REF_PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_QUANTITY_DEF = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: The grammar of ``resource.Quantity`` (k8s.io/apimachinery/pkg/api/resource), the
#: same pattern controller-gen writes into CRDs. The shipped schema accepts any string,
#: so ``memory: 1GB`` would pass here and fail at apply time.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

_INT32 = (-(2**31), 2**31 - 1)

#: Enumerated string fields the API server validates but the OpenAPI v2-derived
#: schemas describe only in prose (k8s.io/api types marked ``+enum``). Definition →
#: property → allowed values; a property holding a list gets the enum on its items.
_ENUMS: dict[str, dict[str, tuple[str, ...]]] = {
    "io.k8s.api.core.v1.Container": {
        "imagePullPolicy": ("Always", "IfNotPresent", "Never"),
        "terminationMessagePolicy": ("File", "FallbackToLogsOnError"),
    },
    "io.k8s.api.core.v1.ContainerPort": {"protocol": ("TCP", "UDP", "SCTP")},
    "io.k8s.api.core.v1.ServicePort": {"protocol": ("TCP", "UDP", "SCTP")},
    "io.k8s.api.core.v1.ServiceSpec": {
        "type": ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
        "sessionAffinity": ("ClientIP", "None"),
        "externalTrafficPolicy": ("Cluster", "Local"),
        "internalTrafficPolicy": ("Cluster", "Local"),
    },
    "io.k8s.api.core.v1.PodSpec": {
        "restartPolicy": ("Always", "OnFailure", "Never"),
        "dnsPolicy": ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
    },
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": {
        "accessModes": ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"),
    },
    "io.k8s.api.core.v1.Toleration": {
        "operator": ("Exists", "Equal"),
        "effect": ("NoSchedule", "PreferNoSchedule", "NoExecute"),
    },
    "io.k8s.api.core.v1.TopologySpreadConstraint": {
        "whenUnsatisfiable": ("DoNotSchedule", "ScheduleAnyway"),
    },
    "io.k8s.api.apps.v1.DeploymentStrategy": {"type": ("Recreate", "RollingUpdate")},
    "io.k8s.api.apps.v1.StatefulSetUpdateStrategy": {"type": ("RollingUpdate", "OnDelete")},
    "io.k8s.api.apps.v1.StatefulSetSpec": {"podManagementPolicy": ("OrderedReady", "Parallel")},
    "io.k8s.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy": {
        "whenDeleted": ("Retain", "Delete"),
        "whenScaled": ("Retain", "Delete"),
    },
    "io.k8s.api.batch.v1.CronJobSpec": {"concurrencyPolicy": ("Allow", "Forbid", "Replace")},
    "io.k8s.api.networking.v1.NetworkPolicySpec": {"policyTypes": ("Ingress", "Egress")},
    "io.k8s.api.networking.v1.NetworkPolicyPort": {"protocol": ("TCP", "UDP", "SCTP")},
    "io.k8s.api.autoscaling.v2.MetricSpec": {
        "type": ("ContainerResource", "External", "Object", "Pods", "Resource"),
    },
    "io.k8s.api.autoscaling.v2.MetricTarget": {"type": ("AverageValue", "Utilization", "Value")},
    "io.k8s.api.autoscaling.v2.HPAScalingRules": {"selectPolicy": ("Max", "Min", "Disabled")},
    "io.k8s.api.autoscaling.v2.HPAScalingPolicy": {"type": ("Pods", "Percent")},
}


class UnsupportedVersionError(ValueError):
    """No schema set ships for the requested Kubernetes version."""


@cache
def _schema_root() -> Path:
    return DATA / "kubernetes"


def _minor(version: str) -> tuple[int, int]:
    m = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    if not m:
        raise UnsupportedVersionError(f"{version!r} is not a Kubernetes version like 1.33")
    return int(m.group(1)), int(m.group(2))


@cache
def supported_versions() -> tuple[str, ...]:
    """Return the Kubernetes minor versions ("1.25", …) whose strict schemas specc ships."""
    index = json.loads((_schema_root() / "index.json").read_text(encoding="utf-8"))
    found = {_minor(v) for v in index["versions"]}
    return tuple(f"{a}.{b}" for a, b in sorted(found))


def resolve_version(version: str) -> str:
    """Return the supported minor version ("1.33") for ``version`` ("1.33", "v1.33.2").

    Patch releases share their minor's API, so ``1.33.4`` uses the 1.33 schemas. Raises
    :class:`UnsupportedVersionError` naming the supported range otherwise.
    """
    wanted = "{}.{}".format(*_minor(version))
    supported = supported_versions()
    if wanted not in supported:
        span = f"{supported[0]}–{supported[-1]}" if supported else "none"
        raise UnsupportedVersionError(
            f"no Kubernetes schemas for version {wanted} (supported: {span})"
        )
    return wanted


@dataclass
class _SchemaSet:
    """The schemas of one Kubernetes version, parsed and compiled on demand."""

    version: str
    #: The gzip-compressed ``_definitions.json`` of this version.
    file: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    _defs: dict[str, Any] | None = None
    _gvk: dict[tuple[str, str, str], str] | None = None
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Digest of each schema in :attr:`schemas`: equal schemas share one validator.
    digests: dict[str, str] = field(default_factory=dict)
    validators: dict[str, jsonschema_rs.Validator] = field(default_factory=dict)

    @property
    def defs(self) -> dict[str, Any]:
        if self._defs is None:
            self._defs = json.loads(gzip.decompress(self.file.read_bytes()))["$defs"]
        return self._defs

    @property
    def source(self) -> str:
        """What identifies this version's definitions file, for the schema cache."""
        return file_fingerprint(self.file)

    @property
    def gvk(self) -> dict[tuple[str, str, str], str]:
        """(group, version, kind) → name of the definition of that top-level kind."""
        if self._gvk is None:

            def build() -> list[list[str]]:
                return sorted(
                    [g["group"], g["version"], g["kind"], name]
                    for name, schema in self.defs.items()
                    for g in schema.get("x-kubernetes-group-version-kind") or ()
                )

            rows, _ = store.cached(("gvk", self.source), build)
            self._gvk = {(g, v, k): name for g, v, k, name in rows}
        return self._gvk

    def standalone(
        self, name: str, api_version: str | None = None, kind: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """Return definition ``name`` as a root schema (see :func:`_standalone`) and its digest."""
        key: tuple[str, ...] = ("def", self.source, name)
        if api_version is not None:
            key = ("kind", self.source, name, api_version, kind or "")
        found: tuple[dict[str, Any], str] = store.cached(
            key, lambda: _standalone(self.defs, name, api_version, kind)
        )
        return found


_SETS: dict[str, _SchemaSet] = {}
_SETS_LOCK = threading.Lock()
#: Validators by schema digest, across versions: most kinds are the same in 1.32 and 1.33.
_COMPILED: dict[str, jsonschema_rs.Validator] = {}


def _schema_set(version: str) -> _SchemaSet:
    with _SETS_LOCK:
        found = _SETS.get(version)
        if found is None:
            found = _SETS[version] = _SchemaSet(version, _schema_root() / f"v{version}.json.gz")
        return found


def split_api_version(api_version: str) -> tuple[str, str]:
    """Return (group, version) of an ``apiVersion`` ("apps/v1" → ("apps", "v1"))."""
    group, _, version = api_version.rpartition("/")
    return group, version


class KubernetesSchemas:
    """The strict schemas of the built-in kinds of one Kubernetes version.

    Cheap to construct: parsing and compiling happen on first use of a kind and are
    shared by every instance for the same version in the process.
    """

    def __init__(self, version: str) -> None:
        #: The minor version whose schemas are used ("1.33").
        self.version = resolve_version(version)
        self._set = _schema_set(self.version)

    @property
    def source(self) -> str:
        """What identifies the schemas of this version (their file; "" if unreadable)."""
        return self._set.source

    def knows(self, api_version: str, kind: str) -> bool:
        """Return whether ``apiVersion``/``kind`` is a built-in kind of this version."""
        group, version = split_api_version(api_version)
        return (group, version, kind) in self._set.gvk

    def api_versions_of(self, kind: str) -> list[str]:
        """Return the apiVersions that serve ``kind`` in this version, sorted."""
        out = [f"{g}/{v}" if g else v for (g, v, k) in self._set.gvk if k == kind]
        return sorted(out)

    def schema(self, api_version: str, kind: str) -> dict[str, Any] | None:
        """Return the self-contained JSON Schema of a built-in kind, or None if unknown."""
        group, version = split_api_version(api_version)
        s = self._set
        name = s.gvk.get((group, version, kind))
        if name is None:
            return None
        key = f"{api_version}/{kind}"
        with s.lock:
            found = s.schemas.get(key)
            if found is None:
                found, s.digests[key] = s.standalone(name, api_version, kind)
                s.schemas[key] = found
            return found

    def validator(self, api_version: str, kind: str) -> jsonschema_rs.Validator | None:
        """Return the compiled validator of a built-in kind, or None if unknown."""
        key = f"{api_version}/{kind}"
        found = self._set.validators.get(key)
        if found is not None:
            return found
        if self.schema(api_version, kind) is None:
            return None
        return self._compiled(key)

    def _compiled(self, key: str) -> jsonschema_rs.Validator:
        s = self._set
        digest = s.digests[key]
        compiled = _COMPILED.get(digest)
        if compiled is None:
            compiled = compile_schema(s.schemas[key])
        with s.lock:
            _COMPILED.setdefault(digest, compiled)
            return s.validators.setdefault(key, compiled)

    def object_meta_schema(self) -> dict[str, Any]:
        """Return the schema of ``metadata`` (ObjectMeta), which custom resources share."""
        s = self._set
        with s.lock:
            found = s.schemas.get(_OBJECT_META)
            if found is None:
                found, s.digests[_OBJECT_META] = s.standalone(_OBJECT_META)
                s.schemas[_OBJECT_META] = found
            return found

    def object_meta_validator(self) -> jsonschema_rs.Validator:
        """Return the compiled ObjectMeta validator of this version."""
        found = self._set.validators.get(_OBJECT_META)
        if found is None:
            self.object_meta_schema()
            found = self._compiled(_OBJECT_META)
        return found


def compile_schema(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """Return a jsonschema_rs validator for a self-contained schema.

    Formats are annotations only: the Kubernetes schemas use ``int32``, ``int64``,
    ``byte`` and ``date-time``, none of which should reject what the API server takes
    (int32 bounds are added as ``minimum``/``maximum`` instead). ``offline`` because
    every ``$ref`` is local: a typo in a reference must fail, not fetch.
    """
    import jsonschema_rs

    return jsonschema_rs.validator_for(
        schema, validate_formats=False, ignore_unknown_formats=True, offline=True
    )


def _standalone(
    defs: dict[str, Any], name: str, api_version: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    """Return definition ``name`` as a root schema carrying the definitions it reaches."""
    needed: list[str] = []
    seen: set[str] = set()

    def rewrite(node: Any, owner: str | None) -> Any:
        if isinstance(node, list):
            return [rewrite(v, None) for v in node]
        if not isinstance(node, dict):
            return node
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "description" or key.startswith("x-kubernetes-"):
                continue  # prose and merge metadata: not validation, only compile time
            if key == "$ref" and isinstance(value, str):
                target = _ref_target(value)
                if target not in seen:
                    seen.add(target)
                    needed.append(target)
                out[key] = f"#/$defs/{target}"
            elif key == "properties" and isinstance(value, dict):
                out[key] = {p: rewrite(v, None) for p, v in value.items()}
            else:
                out[key] = rewrite(value, None)
        _tighten(out)
        if owner in _ENUMS:
            _add_enums(out, _ENUMS[owner])
        return out

    root: dict[str, Any] = rewrite(defs[name], name)
    out_defs: dict[str, Any] = {}
    i = 0
    while i < len(needed):
        target = needed[i]
        i += 1
        if target == _QUANTITY_DEF:
            out_defs[target] = _quantity_schema()
        else:
            out_defs[target] = rewrite(defs[target], target)
    # A top-level object is never null, and its apiVersion/kind are fixed: the shipped
    # per-kind files say the same with enums.
    root["type"] = "object"
    if api_version is not None and kind is not None:
        props = root.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "enum": [api_version]}
        props["kind"] = {"type": "string", "enum": [kind]}
    root["$schema"] = _DRAFT
    if out_defs:
        root["$defs"] = out_defs
    return root


def _ref_target(ref: str) -> str:
    for prefix in _REF_PREFIXES:
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    raise ValueError(f"unexpected $ref {ref!r} in the Kubernetes schemas")


def _tighten(node: dict[str, Any]) -> None:
    """Add the int32 range the API server's decoder enforces."""
    if node.get("format") == "int32" and "integer" in _types(node):
        node.setdefault("minimum", _INT32[0])
        node.setdefault("maximum", _INT32[1])


def _types(node: dict[str, Any]) -> list[str]:
    t = node.get("type")
    if isinstance(t, str):
        return [t]
    return list(t) if isinstance(t, list) else []


def _add_enums(node: dict[str, Any], enums: dict[str, tuple[str, ...]]) -> None:
    props = node.get("properties") or {}
    for prop, values in enums.items():
        target = props.get(prop)
        if target is None:
            continue  # absent in this Kubernetes version
        if "array" in _types(target) and isinstance(target.get("items"), dict):
            target = target["items"]
        allowed: list[Any] = list(values)
        if "null" in _types(target):
            allowed.append(None)
        target["enum"] = allowed


def _quantity_schema() -> dict[str, Any]:
    # A quantity is a string in the quantity grammar, or a plain JSON number. Not null:
    # the API server would read null as zero (a 0 memory limit), never what was meant;
    # kubernetes-validate rejects it too.
    return {"oneOf": [{"type": "string", "pattern": QUANTITY_PATTERN}, {"type": "number"}]}

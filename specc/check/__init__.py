"""Check stage: every desired object against its Kubernetes or CRD schema, offline.

Built-in kinds are checked against the strict schemas of the cluster's Kubernetes
version (unknown fields are errors), custom resources against the schema of the CRD
the fleet ships. Validators are compiled once per kind and process by ``jsonschema_rs``;
a valid object costs one ``is_valid`` call (3–4 µs), and only an invalid one is
walked again to explain its errors. An object that passed in an earlier run is not
checked again (:mod:`specc.check.verdicts`). See bench/README.md for the measurements.

A finding is located at the spec line that produced the object, names the object
(``Kind/namespace/name``) and the field (``spec.template.spec.containers[0].image``),
and says what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from specc.check import prune
from specc.check.crd import CrdSchemas, CrdVersion, compile_crd_schema, crd_json_schema
from specc.check.kubernetes import (
    KubernetesSchemas,
    UnsupportedVersionError,
    compile_schema,
    resolve_version,
    supported_versions,
)
from specc.check.messages import Problem, describe_errors, field_path
from specc.check.verdicts import Verdicts
from specc.errors import CheckError, Finding, Position, object_ref
from specc.objects import ClusterRender, DesiredObject

if TYPE_CHECKING:
    import jsonschema_rs

__all__ = [
    "CrdSchemas",
    "CrdVersion",
    "KubernetesSchemas",
    "UnsupportedVersionError",
    "check_objects",
    "check_render",
    "crd_json_schema",
    "field_path",
    "resolve_version",
    "schema_findings",
    "supported_versions",
]

#: Where a finding about the fleet as a whole (its Kubernetes version) is reported.
_FLEET_FILE = "fleet.yaml"


@dataclass(frozen=True)
class _Kind:
    """How objects of one apiVersion/kind are checked (resolved once per call)."""

    validator: jsonschema_rs.Validator | None
    schema: dict[str, Any] | None
    #: Custom resources: their metadata is checked apart, against ObjectMeta.
    custom: bool = False
    #: Set when objects of this kind cannot be checked: the reason, said once per object.
    refusal: str = ""


def check_objects(
    objects: Iterable[DesiredObject], version: str, crds: CrdSchemas | None = None
) -> list[Finding]:
    """Return the schema violations of ``objects`` for Kubernetes ``version``.

    Each finding is located at the object's spec line, names the object and the
    failing field, and says what was expected. Raises nothing: the caller decides
    (``check_render`` raises :class:`CheckError`). An unsupported Kubernetes version is
    one finding against fleet.yaml.
    """
    return schema_findings(objects, version, crds)[0]


def schema_findings(
    objects: Iterable[DesiredObject], version: str, crds: CrdSchemas | None = None
) -> tuple[list[Finding], list[DesiredObject]]:
    """Return :func:`check_objects`'s findings and the objects that have none.

    The checks that read an object's fields as Kubernetes means them (Pod Security,
    quota, selectors) run only on the second list: an object of the wrong shape
    (``matchLabels: [a]``) is reported here, at its line, and must not reach them.
    """
    try:
        schemas = KubernetesSchemas(version)
    except UnsupportedVersionError as exc:
        return [Finding(Position(_FLEET_FILE), str(exc))], []
    crds = crds if crds is not None else CrdSchemas()
    objects = list(objects)
    memo = Verdicts.open(schemas, crds)
    keys = [memo.key(obj.body) for obj in objects] if memo else [None] * len(objects)
    known = [k is not None and memo is not None and memo.passed(k) for k in keys]
    # The objects of each kind still to check: a kind with a few gets a validator cut
    # to what they hold.
    by_kind: dict[tuple[str, str], list[Any]] = {}
    for obj, done in zip(objects, known, strict=True):
        api_version, kind = obj.body.get("apiVersion"), obj.body.get("kind")
        if not done and isinstance(api_version, str) and isinstance(kind, str):
            by_kind.setdefault((api_version, kind), []).append(obj.body)
    kinds: dict[tuple[str, str], _Kind] = {}
    findings: list[Finding] = []
    passed: list[DesiredObject] = []
    for obj, key, done in zip(objects, keys, known, strict=True):
        if done:
            passed.append(obj)
            continue
        problems = _check_one(obj.body, schemas, crds, kinds, by_kind)
        if problems:
            subject = _subject(obj.body)
            findings.extend(
                Finding(obj.position_of(p.loc), p.message, p.field_path, subject) for p in problems
            )
        else:
            passed.append(obj)
            if memo is not None and key is not None:
                memo.record(key)
    return findings, passed


def _subject(body: dict[str, Any]) -> str:
    """Return ``Kind/namespace/name``, tolerating the malformed objects a check reports."""
    meta = body.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    namespace = meta.get("namespace")
    return object_ref(
        str(body.get("kind") or "?"),
        namespace if isinstance(namespace, str) else None,
        str(meta.get("name") or meta.get("generateName") or "?"),
    )


def check_render(render: ClusterRender, crds: CrdSchemas | None = None) -> None:
    """Check every object of one cluster's render; raise :class:`CheckError` listing all."""
    findings = check_objects(render.objects, render.kubernetes_version, crds)
    if findings:
        raise CheckError(findings)


def _check_one(
    body: dict[str, Any],
    schemas: KubernetesSchemas,
    crds: CrdSchemas,
    kinds: dict[tuple[str, str], _Kind],
    by_kind: dict[tuple[str, str], list[Any]] | None = None,
) -> list[Problem]:
    api_version = body.get("apiVersion")
    kind = body.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [Problem("", "apiVersion and kind must be strings", ("kind",))]
    how = kinds.get((api_version, kind))
    if how is None:
        instances = (by_kind or {}).get((api_version, kind)) or [body]
        how = kinds[(api_version, kind)] = _resolve(api_version, kind, schemas, crds, instances)
    if how.refusal:
        return [Problem("", how.refusal, ("kind",))]
    assert how.validator is not None
    problems: list[Problem] = []
    if not how.validator.is_valid(body):
        problems = describe_errors(how.validator.iter_errors(body), how.schema)
    meta = body.get("metadata")
    if how.custom and meta is not None:
        meta_validator = schemas.object_meta_validator()
        if not meta_validator.is_valid(meta):
            problems += describe_errors(
                meta_validator.iter_errors(meta), schemas.object_meta_schema(), ("metadata",)
            )
    # The schemas leave metadata optional (they also describe list items and
    # sub-resources); an object sent to the API server needs a name.
    named = isinstance(meta, dict) and bool(meta.get("name") or meta.get("generateName"))
    if not named and not any(p.field_path.startswith("metadata") for p in problems):
        problems.append(Problem("metadata.name", "required field is missing", ("metadata",)))
    return problems


def _resolve(
    api_version: str,
    kind: str,
    schemas: KubernetesSchemas,
    crds: CrdSchemas,
    instances: list[Any],
) -> _Kind:
    """Return how to check ``apiVersion``/``kind``: built-in first, then the fleet's CRDs.

    For at most :data:`prune.MAX_OBJECTS` ``instances`` the validator is compiled from the
    schema cut to what they hold (:mod:`specc.check.prune`: same verdicts and errors, a
    fraction of the compile); for more, the full validator, compiled once per process.
    """
    few = len(instances) <= prune.MAX_OBJECTS
    full = schemas.schema(api_version, kind)
    if full is not None:
        if few:
            cut = prune.for_instances(full, instances)
            return _Kind(compile_schema(cut), cut)
        return _Kind(schemas.validator(api_version, kind), full)
    crd = crds.lookup(api_version, kind)
    if crd is not None and not crd.served:
        served = crds.versions_of(api_version, kind)
        hint = f"; served: {', '.join(served)}" if served else ""
        return _Kind(None, None, refusal=f"{crd.crd} does not serve {api_version}{hint}")
    if crd is not None:
        try:
            schema = crds.schema(api_version, kind)
            if few and schema is not None:
                cut = prune.for_instances(schema, instances)
                return _Kind(compile_crd_schema(cut), cut, custom=True)
            return _Kind(crds.validator(api_version, kind), schema, custom=True)
        except ValueError as exc:
            where = f" ({crd.source})" if crd.source else ""
            # jsonschema_rs explains over several lines; the first says what is wrong.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return _Kind(
                None, None, refusal=f"the schema of {crd.crd}{where} does not compile: {reason}"
            )
    return _Kind(None, None, refusal=_unknown_kind(api_version, kind, schemas, crds))


def _unknown_kind(api_version: str, kind: str, schemas: KubernetesSchemas, crds: CrdSchemas) -> str:
    message = (
        f"unknown kind {kind} in {api_version} for Kubernetes {schemas.version} "
        "(no CRD in the fleet defines it)"
    )
    # The usual cause is an API version removed from Kubernetes (policy/v1beta1
    # PodDisruptionBudget in 1.25, autoscaling/v2beta2 in 1.26): name the current one.
    broken = crds.malformed.get((api_version.rpartition("/")[0], kind))
    if broken:
        return (
            f"{broken}, which would define {kind} in {api_version}, is malformed (see its errors)"
        )
    elsewhere = schemas.api_versions_of(kind) + crds.versions_of(api_version, kind)
    if elsewhere:
        message += f"; {kind} is served as {', '.join(elsewhere)}"
    return message

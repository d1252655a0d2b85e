"""Validate stage: raw documents → typed specs, with every problem located in the source.

All problems of a run are collected and raised together, sorted by file and line, so a
pull request shows its author everything that is wrong at once.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from specc.errors import Finding, LoadError, Position, ValidationError, did_you_mean
from specc.load import (
    MAX_FINDINGS,
    Document,
    FieldPath,
    SourceMap,
    parse_text,
    read_text,
    relpath,
    resolve_reference,
)
from specc.load import Fleet as RawFleet
from specc.manifests import ManifestObject, is_list, manifest_objects
from specc.placement import apply_overrides, override_chain, selects
from specc.spec import API_VERSION, APP_KINDS, KINDS
from specc.spec.apps import App, Manifests, Service, StatefulService
from specc.spec.fleet import Cluster, Fleet
from specc.spec.team import Team
from specc.tenancy import AGENT_NAMESPACE, reserved_namespace

M = TypeVar("M", bound=BaseModel)


@dataclass
class ValidApp:
    """An app document and its typed base spec."""

    doc: Document
    model: App
    #: Documents of the files a Manifests app refers to, parsed at validation.
    files: list[Document] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        """Return (kind, team, name): no two apps may share it.

        Service and StatefulService count as one kind, since both render a Kubernetes
        Service (and ConfigMap, PodDisruptionBudget) named after the app.
        """
        kind = self.model.kind
        if kind == "StatefulService":
            kind = "Service"
        return (kind, self.model.metadata.team, self.model.metadata.name)


@dataclass
class ValidFleet:
    """A fleet whose every document is typed and whose cross-references hold."""

    root: Path
    fleet: Fleet
    fleet_doc: Document
    teams: dict[str, tuple[Team, Document]]
    apps: list[ValidApp]
    crds: list[Document] = field(default_factory=list)
    #: What is worth saying but does not fail the fleet (Prometheus only warns about it).
    warnings: list[Finding] = field(default_factory=list)

    @property
    def clusters(self) -> list[Cluster]:
        return self.fleet.spec.clusters

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        known = ", ".join(c.name for c in self.clusters)
        raise KeyError(f"no cluster {name!r} in fleet.yaml (clusters: {known})")

    def apps_for(self, cluster: Cluster) -> list[ValidApp]:
        return [a for a in self.apps if selects(a.model.placement, cluster)]


def typed(model: type[M], data: Any, source: SourceMap) -> tuple[M | None, list[Finding]]:
    """Return ``data`` as a ``model`` instance, or None and the findings that say why not."""
    try:
        out = model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors()
        findings = [_finding(model, err, data, source) for err in errors[:MAX_FINDINGS]]
        findings = _merge_alternatives(findings)
        if len(errors) > MAX_FINDINGS:
            findings.append(
                Finding(
                    source.value(()),
                    f"and {len(errors) - MAX_FINDINGS} more problems in this document, not shown",
                )
            )
        return None, findings
    if source.texts:
        _restore_texts(out, source, ())
    return out, []


def _restore_texts(obj: BaseModel, source: SourceMap, loc: FieldPath) -> None:
    """Put back the text of plain scalars that string fields took as numbers or booleans.

    ``VERSION: 1.10`` is the float 1.1 to YAML; an env value is text, and the text
    written is ``1.10`` (likewise ``012345``, ``1e3``, ``True``).
    """
    for name, info in type(obj).model_fields.items():
        here = (*loc, info.alias or name)
        value = getattr(obj, name)
        if _keeps_text(type(obj), name):
            if isinstance(value, dict):
                for key in value:
                    text = source.texts.get((*here, key))
                    if text is not None:
                        value[key] = text
            elif isinstance(value, str) and here in source.texts:
                obj.__dict__[name] = source.texts[here]
        elif isinstance(value, BaseModel):
            _restore_texts(value, source, here)
        elif isinstance(value, list | dict):
            items = enumerate(value) if isinstance(value, list) else value.items()
            for key, item in items:
                if isinstance(item, BaseModel):
                    _restore_texts(item, source, (*here, key))


@functools.cache
def _keeps_text(model: type[BaseModel], name: str) -> bool:
    """Return whether field ``name`` of ``model`` holds StrValue text (numbers stringified)."""
    from specc.spec.base import keeps_text

    info = model.model_fields[name]
    return (
        keeps_text(info.annotation)
        or any(keeps_text(m) for m in info.metadata)
        or any(
            isinstance(m, pydantic.BeforeValidator) and keeps_text(typing.Annotated[str, m])
            for m in info.metadata
        )
    )


def _merge_alternatives(findings: list[Finding]) -> list[Finding]:
    """Return ``findings`` with those at the same place and field joined into one.

    A value that fits no member of a union gets one error per member from pydantic;
    the reader wants one line saying what would have been accepted.
    """
    merged: dict[tuple[Position, str], list[str]] = {}
    for f in findings:
        messages = merged.setdefault((f.position, f.field_path), [])
        if f.message not in messages:
            messages.append(f.message)
    return [
        Finding(pos, "; or ".join(messages), field_path)
        for (pos, field_path), messages in merged.items()
    ]


def _finding(model: type[BaseModel], err: Any, data: Any, source: SourceMap) -> Finding:
    kind = err["type"]
    # Union members and validators add their names to loc; keep the parts found in data.
    loc = _data_loc(tuple(err["loc"]), data, keep_last=kind == "missing")
    dotted = _dotted(loc)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        known = _known_fields(model, loc[:-1])
        hint = did_you_mean(name, known)
        msg = f"unknown field {name!r}{hint}"
        if known and not hint:
            msg += f"; expected one of: {', '.join(sorted(known))}"
        return Finding(source.key(loc), msg, _dotted(loc[:-1]))
    if kind == "missing":
        return Finding(
            source.value(loc[:-1]), f"required field {loc[-1]!r} is missing", _dotted(loc[:-1])
        )
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if kind == "literal_error" and "expected" in err.get("ctx", {}):
        msg = f"expected {err['ctx']['expected']}, got {err.get('input')!r}"
    value = err.get("input")
    if kind == "string_type" and isinstance(value, bool | int | float):
        # YAML read an unquoted `1.30` or `true` as a number or boolean.
        text = source.texts.get(loc) or (
            "true" if value is True else "false" if value is False else str(value)
        )
        msg += (
            f" (YAML reads the unquoted {text} as a {type(value).__name__}; did you mean '{text}'?)"
        )
    # A problem inside a value (a PromQL expression, a template) says where in it.
    offset = (err.get("ctx") or {}).get("specc_offset")
    if isinstance(offset, int):
        return Finding(source.within(loc, offset), msg, dotted)
    return Finding(source.value(loc), msg, dotted)


def _data_loc(loc: FieldPath, data: Any, keep_last: bool) -> FieldPath:
    """Return the parts of a pydantic ``loc`` that are keys or indexes in ``data``.

    Union members and validators add their names (``int``, ``function-after[...]``)
    to ``loc``; they name no place in the file. The last part of a missing field's loc
    is kept although it is, by definition, not in the data.
    """
    out: list[str | int] = []
    current = data
    for i, part in enumerate(loc):
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if (isinstance(current, dict) and part in current) or in_list:
            current = current[part]
        elif not (keep_last and i == len(loc) - 1):
            continue
        out.append(part)
    return tuple(out)


def _dotted(loc: FieldPath) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _known_fields(model: type[BaseModel], loc: FieldPath) -> list[str]:
    """Return the field names (aliases) expected at ``loc`` inside ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fld = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part or n == part),
                None,
            )
            if fld is None:
                return []
            current = fld.annotation
        else:
            args = typing.get_args(current)
            current = args[-1] if args else None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            models = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = models[0] if len(models) == 1 else tp
            if len(models) != 1:
                return tp
        else:
            return tp


def _check_header(doc: Document, allowed: tuple[str, ...]) -> Finding | None:
    data = doc.data
    if not isinstance(data, dict):
        return Finding(doc.position, "a fleet document must be a mapping")
    if data.get("apiVersion") != API_VERSION:
        return Finding(
            doc.source.value(("apiVersion",)),
            f"apiVersion must be {API_VERSION!r}, got {data.get('apiVersion')!r}",
            "apiVersion",
        )
    kind = data.get("kind")
    if kind not in allowed:
        hint = did_you_mean(str(kind), allowed)
        msg = f"kind {kind!r} does not belong here; expected {' or '.join(allowed)}{hint}"
        return Finding(doc.source.value(("kind",)), msg, "kind")
    return None


def validate_fleet(raw: RawFleet) -> ValidFleet:
    """Return the typed fleet; raise :class:`ValidationError` listing every problem."""
    findings: list[Finding] = list(raw.findings)

    fleet_model: Fleet | None = None
    fleet_doc = raw.fleet[0] if raw.fleet else None
    if fleet_doc is None:
        findings.append(Finding(Position("fleet.yaml"), "fleet.yaml holds no document"))
    else:
        if len(raw.fleet) > 1:
            findings.append(Finding(raw.fleet[1].position, "fleet.yaml must hold one document"))
        bad = _check_header(fleet_doc, ("Fleet",))
        if bad:
            findings.append(bad)
        else:
            fleet_model, problems = typed(Fleet, fleet_doc.data, fleet_doc.source)
            findings.extend(problems)

    teams: dict[str, tuple[Team, Document]] = {}
    # Names of teams whose documents have errors: their apps should not also report
    # "team not defined", which would bury the real error.
    broken_teams: set[str] = set()
    namespaces: dict[str, Document] = {}
    for doc in raw.teams:
        bad = _check_header(doc, ("Team",))
        if bad:
            findings.append(bad)
            continue
        team, problems = typed(Team, doc.data, doc.source)
        findings.extend(problems)
        if team is None:
            meta = doc.data.get("metadata")
            if isinstance(meta, dict) and isinstance(meta.get("name"), str):
                broken_teams.add(meta["name"])
            continue
        name = team.metadata.name
        if name in teams:
            first = teams[name][1]
            findings.append(_dup(doc, ("metadata", "name"), f"team {name!r}", first))
            continue
        reserved = reserved_namespace(team.namespace)
        if reserved:
            loc = ("spec", "namespace") if team.spec.namespace else ("metadata", "name")
            findings.append(
                Finding(
                    doc.source.value(loc),
                    f"{reserved}; a team cannot own it (set spec.namespace to a namespace "
                    "of its own; fleet.yaml spec.grants shares existing ones)",
                    _dotted(loc),
                )
            )
        if team.namespace in namespaces:
            findings.append(
                _dup(
                    doc,
                    ("spec", "namespace"),
                    f"namespace {team.namespace!r}",
                    namespaces[team.namespace],
                )
            )
        teams[name] = (team, doc)
        namespaces[team.namespace] = doc

    if fleet_model is not None and fleet_doc is not None:
        findings.extend(_grant_problems(fleet_model, fleet_doc, teams, broken_teams))

    apps: list[ValidApp] = []
    warnings: list[Finding] = []
    seen: dict[tuple[str, str, str], Document] = {}
    for doc in raw.apps:
        bad = _check_header(doc, APP_KINDS)
        if bad:
            findings.append(bad)
            continue
        model_cls = KINDS[doc.data["kind"]]
        model, problems = typed(model_cls, doc.data, doc.source)
        findings.extend(problems)
        if model is None:
            findings.extend(_team_exists(doc, teams, broken_teams))
            findings.extend(_override_problems(doc, model_cls, fleet_model, problems))
            continue
        app = ValidApp(doc, typing.cast(App, model))
        if app.key in seen:
            findings.append(
                _dup(
                    doc,
                    ("metadata", "name"),
                    f"{seen[app.key].kind} {app.key[2]!r} of team {app.key[1]!r}",
                    seen[app.key],
                )
            )
            continue
        seen[app.key] = doc
        apps.append(app)
        findings.extend(_app_rules(raw.root, app, teams, broken_teams, fleet_model))
        warnings.extend(_app_warnings(app, fleet_model))

    if findings or fleet_model is None or fleet_doc is None:
        raise ValidationError(findings)
    return ValidFleet(
        raw.root, fleet_model, fleet_doc, teams, apps, raw.crds, sorted(set(warnings))
    )


def _grant_problems(
    fleet: Fleet, doc: Document, teams: dict[str, tuple[Team, Document]], broken: set[str]
) -> list[Finding]:
    """Return what is wrong with fleet.yaml's grants: unknown teams, namespaces not shareable."""
    out: list[Finding] = []
    owners = {team.namespace: name for name, (team, _) in teams.items()}
    for i, grant in enumerate(fleet.spec.grants):
        if grant.team not in teams and grant.team not in broken:
            loc: FieldPath = ("spec", "grants", i, "team")
            out.append(
                Finding(
                    doc.source.value(loc),
                    f"team {grant.team!r} is not defined in teams/",
                    _dotted(loc),
                )
            )
        for j, ns in enumerate(grant.namespaces):
            loc = ("spec", "grants", i, "namespaces", j)
            why = ""
            if ns in owners:
                why = f"it is the own namespace of team {owners[ns]!r}"
            elif ns == AGENT_NAMESPACE:
                why = "it is the specc agent's (inventory, Lease)"
            if why:
                out.append(
                    Finding(
                        doc.source.value(loc),
                        f"namespace {ns!r} cannot be shared: {why}",
                        _dotted(loc),
                    )
                )
    return out


def _app_warnings(app: ValidApp, fleet: Fleet | None = None) -> list[Finding]:
    """Return the warnings of one app (rules Prometheus evaluates twice), overrides merged too."""
    from specc.spec.monitoring import MonitoringStack, rule_warnings

    if not isinstance(app.model, MonitoringStack):
        return []
    variants: list[tuple[MonitoringStack, SourceMap, list[FieldPath]]] = [
        (app.model, app.doc.source, [])
    ]
    for c in fleet.spec.clusters if fleet is not None else []:
        chain = override_chain(app.doc.data, c)
        if chain:
            merged, source = apply_overrides(app.doc.data, app.doc.source, chain)
            model, _ = typed(MonitoringStack, merged, source)
            if model is not None:
                variants.append((model, source, chain))
    out = set()
    for model, source, chain in variants:
        for loc, message in rule_warnings(model.spec.rules):
            full = ("spec", "rules", *loc)
            found = Finding(source.value(full), message, _dotted(full), severity="warning")
            out.add(_in_override(app.doc, chain, found) if chain else found)
    return sorted(out)


def _dup(doc: Document, loc: FieldPath, what: str, first: Document) -> Finding:
    where = first.source.value(loc)
    return Finding(doc.source.value(loc), f"{what} is already defined at {where}", _dotted(loc))


def _app_rules(
    root: Path,
    app: ValidApp,
    teams: dict[str, tuple[Team, Document]],
    broken_teams: set[str],
    fleet: Fleet | None,
) -> list[Finding]:
    """Return the cross-document problems of one app."""
    out: list[Finding] = []
    doc, model = app.doc, app.model
    out.extend(_team_exists(doc, teams, broken_teams))
    out.extend(_file_refs(root, doc, model))
    if isinstance(model, Manifests):
        out.extend(_manifest_files(root, app))
        for item in manifest_objects(model.spec.objects, doc.source, app.files):
            out.extend(_manifest_rules(item))
    if fleet is None:
        return out

    clusters = fleet.spec.clusters
    env_names = [e.name for e in fleet.spec.environments]
    cluster_names = [c.name for c in clusters]
    p = model.placement
    for field_name, names, known in (
        ("environments", p.environments, env_names),
        ("clusters", p.clusters, cluster_names),
    ):
        for i, n in enumerate(names or []):
            if n not in known:
                out.append(
                    Finding(
                        doc.source.value(("placement", field_name, i)),
                        f"no {field_name[:-1]} named {n!r} in fleet.yaml",
                        f"placement.{field_name}[{i}]",
                    )
                )
    if not any(selects(p, c) for c in clusters):
        out.append(
            Finding(doc.source.key(("placement",)), "placement selects no cluster", "placement")
        )

    for field_name, known in (("environments", env_names), ("clusters", cluster_names)):
        for n in getattr(model.overrides, field_name):
            if n not in known:
                out.append(
                    Finding(
                        doc.source.key(("overrides", field_name, n)),
                        f"override for unknown {field_name[:-1]} {n!r}",
                        f"overrides.{field_name}",
                    )
                )
    # Every override is validated as it will be used: merged onto the base. Clusters the
    # placement leaves out count too, so that a dormant override is not a broken one.
    model_cls = type(model)
    for c in clusters:
        chain = override_chain(doc.data, c)
        if not chain:
            continue
        merged, source = apply_overrides(doc.data, doc.source, chain)
        merged_model, problems = typed(model_cls, merged, source)
        if merged_model is not None:
            problems.extend(_file_refs(root, doc, merged_model, source))
            # The base's rules run on what each cluster gets: an override is no way
            # around the plaintext-Secret or PrometheusRule checks.
            if isinstance(merged_model, Manifests) and isinstance(model, Manifests):
                problems.extend(_ineffective_files(doc, chain, model, merged_model))
                for item in manifest_objects(merged_model.spec.objects, source, app.files):
                    problems.extend(_manifest_rules(item))
        out.extend(_in_override(doc, chain, f) for f in problems)
    return sorted(set(out))


def _ineffective_files(
    doc: Document, chain: list[FieldPath], base: Manifests, merged: Manifests
) -> list[Finding]:
    """Return an error where an override changes a Manifests app's ``files``.

    The files are read once for every cluster; an override of them would be silently
    ignored, so it is refused instead.
    """
    if merged.spec.files == base.spec.files:
        return []
    at = next((p for p in reversed(chain) if "files" in _at(doc.data, p)), chain[-1])
    return [
        Finding(
            doc.source.key((*at, "files")),
            "an override cannot change files (they are read once, for every cluster): "
            "override objects instead, or make a separate app placed on these clusters",
            _dotted((*at, "files")),
        )
    ]


def _at(data: Any, path: FieldPath) -> Any:
    for part in path:
        data = data.get(part) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def _override_problems(
    doc: Document, model_cls: type[BaseModel], fleet: Fleet | None, reported: list[Finding]
) -> list[Finding]:
    """Return the problems inside the overrides of an app whose base spec is invalid.

    The base's own problems are reported already; the overrides' come too, so that one
    run shows every error of the app (not one more each time the author fixes one).
    """
    overrides = doc.data.get("overrides")
    if (
        fleet is None
        or not isinstance(overrides, dict)
        or not isinstance(doc.data.get("spec"), dict)
    ):
        return []
    for group in ("environments", "clusters"):
        entries = overrides.get(group) or {}
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            return []
    seen = set(reported)
    out: set[Finding] = set()
    for c in fleet.spec.clusters:
        chain = override_chain(doc.data, c)
        if not chain:
            continue
        merged, source = apply_overrides(doc.data, doc.source, chain)
        for f in typed(model_cls, merged, source)[1]:
            located = _in_override(doc, chain, f)
            if located.field_path.startswith("overrides") and located not in seen:
                out.add(located)
    return sorted(out)


def _in_override(doc: Document, chain: list[FieldPath], finding: Finding) -> Finding:
    """Return ``finding`` with its field path inside the override it comes from, if any.

    Merged specs report ``spec.replicas``; when the value came from
    ``overrides.environments.prod.replicas`` the reader should see that path.
    """
    if not finding.field_path.startswith("spec"):
        return finding
    where = (finding.position.line, finding.position.column)
    for path in reversed(chain):  # the last override applied wins
        sub = doc.source.sub(path)
        if where in sub.values.values() or where in sub.keys.values():
            field_path = _dotted(path) + finding.field_path.removeprefix("spec")
            return Finding(finding.position, finding.message, field_path, finding.subject)
    return finding


def _team_exists(
    doc: Document, teams: dict[str, tuple[Team, Document]], broken: set[str]
) -> list[Finding]:
    meta = doc.data.get("metadata")
    team = meta.get("team") if isinstance(meta, dict) else None
    if not isinstance(team, str) or team in teams or team in broken:
        return []
    msg = f"team {team!r} is not defined in teams/{did_you_mean(team, teams)}"
    return [Finding(doc.source.value(("metadata", "team")), msg, "metadata.team")]


def _file_refs(
    root: Path, doc: Document, model: App, source: SourceMap | None = None
) -> list[Finding]:
    if not isinstance(model, Service | StatefulService) or model.spec.config is None:
        return []
    source = source or doc.source
    out = []
    for key, ref in model.spec.config.files.items():
        loc = ("spec", "config", "files", key)
        try:
            path = resolve_reference(root, doc.path, ref)
        except ValueError as exc:
            out.append(Finding(source.value(loc), f"config file {exc}", _dotted(loc)))
            continue
        if not path.is_file():
            out.append(
                Finding(source.value(loc), f"config file {ref!r} {_missing(path)}", _dotted(loc))
            )
    return out


def _missing(path: Path) -> str:
    """Say why ``path``, which is not a regular file, cannot be read."""
    return "is not a regular file" if path.exists() else "does not exist"


def _manifest_files(root: Path, app: ValidApp) -> list[Finding]:
    """Parse the files a Manifests app lists into ``app.files``; return their problems."""
    assert isinstance(app.model, Manifests)
    out: list[Finding] = []
    for i, ref in enumerate(app.model.spec.files):
        loc: FieldPath = ("spec", "files", i)
        where = app.doc.source.value(loc)
        try:
            path = resolve_reference(root, app.doc.path, ref)
        except ValueError as exc:
            out.append(Finding(where, f"manifest file {exc}", _dotted(loc)))
            continue
        if not path.is_file():
            out.append(Finding(where, f"manifest file {ref!r} {_missing(path)}", _dotted(loc)))
            continue
        try:
            text = read_text(root, path)
        except LoadError as exc:
            out.extend(exc.findings)
            continue
        docs, problems = parse_text(text, relpath(root, path))
        out.extend(problems)
        app.files.extend(docs)
    return out


def _prometheus_rule(source: SourceMap, loc: FieldPath, obj: dict[str, Any]) -> list[Finding]:
    """Return the problems of a PrometheusRule's groups, checked as MonitoringStack rules are.

    The CRD's schema checks the shape later; the PromQL and template checks only run
    here, where each problem is located inside the expression or template.
    """
    from specc.spec.monitoring import PrometheusRuleSpec

    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    at = (*loc, "spec")
    _, problems = typed(PrometheusRuleSpec, spec, source.sub(at))
    prefix = _dotted(at)
    return [
        Finding(
            f.position,
            f.message,
            f"{prefix}.{f.field_path}" if prefix and f.field_path else prefix or f.field_path,
            f.subject,
        )
        for f in problems
    ]


def _manifest_rules(item: ManifestObject) -> list[Finding]:
    obj, loc, where, dotted = item.body, item.loc, item.position, item.field_path
    if not isinstance(obj, dict):
        return [Finding(where, "a Kubernetes object must be a mapping", dotted)]
    out = []
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj.get(key):
            out.append(Finding(where, f"object needs {key}", dotted))
    if is_list(obj):
        # A list whose items are not a list: the items of a good one are yielded instead.
        return [*out, Finding(item.source.value((*loc, "items")), "items must be a list", dotted)]
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        from specc.compile.custom import object_shape_problems

        out += [
            Finding(item.source.value((*loc, *path)), message, _dotted((*loc, *path)))
            for path, message in object_shape_problems(obj)
            if path[:1] == ("metadata",)
        ]
    elif not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        out.append(Finding(where, "object needs metadata.name", dotted))
    if obj.get("kind") == "PrometheusRule" and str(obj.get("apiVersion", "")).startswith(
        "monitoring.coreos.com/"
    ):
        out.extend(_prometheus_rule(item.source, loc, obj))
    if (
        obj.get("kind") == "Secret"
        and obj.get("apiVersion") == "v1"
        and (obj.get("data") or obj.get("stringData"))
    ):
        out.append(
            Finding(
                where,
                "a Secret with values does not belong in git: reference an existing "
                "Secret from the app spec (spec.secrets) instead",
                dotted,
            )
        )
    return out

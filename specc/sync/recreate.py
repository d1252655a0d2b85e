"""Changes the API server refuses in place: recognise them, and re-create on opt-in.

Recognised from the Status of the 422 (``details.causes``: their reason and field): a
refusal is re-creatable when every cause is ``FieldValueForbidden`` or
``FieldValueInvalid`` at a field this apply changes (a StatefulSet's forbidden update
names ``spec``) and, as those reasons also mean "invalid value", the field is one
:func:`specc.changerules.forbidden_fields` forbids for a kind it knows, or, for other
kinds, the cause says the field is immutable. The fields reported are those.

A StatefulSet is deleted with ``propagationPolicy: Orphan`` and applied again: its pods
and PersistentVolumeClaims stay and the new StatefulSet adopts them. A storage
increase is then written to each existing claim of the template whose StorageClass
allows expansion (``allowVolumeExpansion``); the others are named, left as they are.
"""

from __future__ import annotations

import re
import time
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from specc.changerules import IMMUTABLE_SELECTOR, forbidden_fields, storage_changes
from specc.errors import SpeccError
from specc.objects import RECREATE_ANNOTATION
from specc.quantity import parse_quantity
from specc.sync.cluster import ApiError

if TYPE_CHECKING:
    from specc.sync.cluster import Cluster
    from specc.sync.plan import PlanEntry

#: Cause reasons (metav1.CauseType) of a field that may not take the new value.
_REFUSED_CAUSES = frozenset({"FieldValueForbidden", "FieldValueInvalid"})
#: Kinds whose in-place rules ``specc.changerules`` knows.
KNOWN_KINDS = frozenset({"StatefulSet.apps"}) | IMMUTABLE_SELECTOR
#: How other kinds' validation words an update it refuses (apimachinery's
#: FieldImmutableErrorMsg "field is immutable", a PVC's "spec is immutable after
#: creation", a Service's clusterIP "may not change once set").
_IMMUTABLE = re.compile(r"\bimmutable\b|may not change")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


def refused_fields(exc: ApiError, entry: PlanEntry) -> list[str] | None:
    """Return the changed fields the server refused to update in place, or None when the
    422 is something else (an invalid value that a re-creation would not cure)."""
    if exc.status != 422 or exc.reason != "Invalid" or not exc.causes:
        return None
    changed = [c.path for c in entry.changes]
    kind = entry.key.group_kind
    fields: set[str] = set()
    for cause in exc.causes:
        field = str(cause.get("field") or "")
        if cause.get("reason") not in _REFUSED_CAUSES or not field:
            return None
        hits = [p for p in changed if _under(p, field)]
        if not hits:
            return None
        if kind in KNOWN_KINDS:
            # The same reasons say "invalid value" too (replicas -1, a bad template): for
            # a kind whose in-place rules are known, only a field they forbid is cured by
            # a re-creation; anything else would delete the object and fail to create it.
            named = forbidden_fields(kind, hits)
            if not named:
                return None
            fields.update(named)
        elif _IMMUTABLE.search(str(cause.get("message") or "")):
            fields.add(field)  # the server's own words: field is immutable, may not change
        else:
            return None
    return sorted(fields)


def cause_summary(exc: ApiError) -> str:
    return ", ".join(f"{c.get('reason')} at {c.get('field')}" for c in exc.causes)


def recreate(
    cluster: Cluster, entry: PlanEntry, exc: ApiError, fields: list[str]
) -> tuple[str, str]:
    """Re-create the object of ``entry`` if it opts in; return (outcome, message)."""
    assert entry.desired is not None
    d = entry.desired
    said = f"{', '.join(fields)} cannot change in place (the API server: {cause_summary(exc)})"
    notes = d.body["metadata"].get("annotations") or {}
    if notes.get(RECREATE_ANNOTATION) != "allow":
        return (
            "failed",
            f"{said}; set the annotation {RECREATE_ANNOTATION}: allow (StatefulService: "
            "allowRecreate: true) to let specc re-create it",
        )
    stateful = entry.key.group_kind == "StatefulSet.apps"
    # Orphan: the StatefulSet's pods and claims outlive it; the new one adopts them.
    policy = "Orphan" if stateful else "Background"
    try:
        old_uid = ((entry.live or {}).get("metadata") or {}).get("uid")
        cluster.delete(entry.key, d.api_version, propagation=policy)
        deadline = time.monotonic() + 60
        while True:
            now = cluster.get(d.api_version, d.kind, d.namespace, d.name)
            if now is None or (now.get("metadata") or {}).get("uid") != old_uid:
                break
            if time.monotonic() > deadline:
                return "failed", f"{said}; deleted for re-creation but still present after 60s"
            time.sleep(0.2)
        cluster.apply(d.body, force=True)
    except SpeccError as err:
        return "failed", f"{said}; re-creation failed: {err}"
    message = f"re-created ({policy.lower()} propagation): {', '.join(fields)} changed"
    if stateful and entry.live is not None:
        notes_, failed = expand_claims(cluster, entry.live, d.body)
        if notes_:
            message += "; " + "; ".join(notes_)
        if failed:
            return "failed", message
    return "configured", message


def expand_claims(
    cluster: Cluster, old: dict[str, Any], new: dict[str, Any]
) -> tuple[list[str], bool]:
    """Write each storage increase of a StatefulSet's claim templates to its existing
    claims; return what was done (or not, and why) and whether a write failed."""
    meta = new.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    increases = [c for c in storage_changes(old, new) if c.increase]
    if not increases:
        return [], False
    res = cluster.resource("v1", "PersistentVolumeClaim")
    assert res is not None
    try:
        claims = cluster.list(res, "", namespace=namespace)
    except SpeccError as exc:
        # The StatefulSet is re-created already: say why its claims kept their size.
        return [f"claims not expanded: {exc}"], True
    classes: dict[str, bool] = {}
    notes: list[str] = []
    failed = False
    for change in increases:
        own = re.compile(rf"^{re.escape(change.claim)}-{re.escape(name)}-[0-9]+$")
        for pvc in sorted(claims, key=lambda c: str(c["metadata"]["name"])):
            claim = str(pvc["metadata"]["name"])
            if not own.match(claim):
                continue
            asked = _requested(pvc)
            if asked is not None and asked >= parse_quantity(change.new).value:
                # Expanded beyond the template already (by hand): writing the template's
                # size would lower the request, undoing that expansion.
                size = pvc["spec"]["resources"]["requests"]["storage"]
                notes.append(f"claim {claim} left at {size}: already {change.new} or more")
                continue
            sc = str((pvc.get("spec") or {}).get("storageClassName") or "")
            if sc not in classes:
                try:
                    found = (
                        cluster.get("storage.k8s.io/v1", "StorageClass", None, sc) if sc else None
                    )
                except SpeccError as exc:
                    failed = True
                    notes.append(f"claim {claim} not expanded: {exc}")
                    continue
                classes[sc] = bool((found or {}).get("allowVolumeExpansion"))
            if not classes[sc]:
                notes.append(
                    f"claim {claim} left at its size: StorageClass {sc or '(none)'} does not "
                    "allow expansion"
                )
                continue
            try:
                cluster.request(
                    "patch",
                    "PATCH",
                    res.path(namespace, claim),
                    [("fieldManager", "specc")],
                    {"spec": {"resources": {"requests": {"storage": change.new}}}},
                    "application/merge-patch+json",
                    what=f"PersistentVolumeClaim/{namespace}/{claim}",
                )
            except SpeccError as exc:
                failed = True
                notes.append(f"claim {claim} not expanded: {exc}")
                continue
            notes.append(f"claim {claim} expanded to {change.new}")
    return notes, failed


def _requested(pvc: dict[str, Any]) -> Fraction | None:
    """Return the storage a claim requests now (bytes), None if it says none readable."""
    size = (((pvc.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage")
    try:
        return parse_quantity(str(size)).value if size is not None else None
    except ValueError:
        return None

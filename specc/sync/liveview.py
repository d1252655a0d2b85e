"""The live side of a diff: live objects seen through the fields the commit declares.

``specc diff --cluster`` compares the cluster with the commit in the same view as a
pull-request diff. Live objects carry defaults, status and other managers' fields that
the commit never declares; projecting them onto the desired object's shape shows only
what a sync would change.
"""

from __future__ import annotations

from typing import Any

from specc.errors import Position
from specc.objects import DesiredObject
from specc.sync.fields import _key_of, _list_key
from specc.sync.plan import Plan

_SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


def project(desired: Any, live: Any) -> Any:
    """Return the parts of ``live`` at the places ``desired`` sets (lists of named items by key)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {k: project(v, live[k]) for k, v in desired.items() if k in live}
    if isinstance(desired, list) and isinstance(live, list):
        key = _list_key(desired)
        if key is not None and _list_key(live) == key:
            by_key = {_key_of(item, key): item for item in live}
            wanted = {_key_of(item, key) for item in desired}
            out = [
                project(d, by_key[_key_of(d, key)]) for d in desired if _key_of(d, key) in by_key
            ]
            # Items someone else added to a list specc declares stay visible.
            return out + [item for k, item in by_key.items() if k not in wanted]
        if len(desired) == len(live):
            return [project(d, lv) for d, lv in zip(desired, live, strict=True)]
        return live
    return live


def _as_declared(live: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in live.items() if k != "status"}
    meta = {k: v for k, v in (live.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    return {**body, "metadata": meta}


def live_objects(plan: Plan) -> list[DesiredObject]:
    """Return the cluster's side of ``plan`` as objects comparable with the desired ones."""
    out = []
    for e in plan.entries:
        if e.live is None:
            continue
        if e.desired is None:
            out.append(DesiredObject(_as_declared(e.live), Position("(live)"), "live"))
        elif e.action == "unchanged":
            out.append(e.desired)  # confirmed equal by the server's dry-run
        else:
            out.append(
                DesiredObject(project(e.desired.body, e.live), e.desired.source, e.desired.origin)
            )
    return out

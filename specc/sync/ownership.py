"""Who owns a live object that is not yet in specc's set: the ownership guard's classification.

An object a commit declares may already exist. If nobody claims it (free), specc
adopts it as it would create it. If it carries another owner's marks — another
ApplySet's ``applyset.kubernetes.io/part-of``, another specc cluster's, or Helm's
``app.kubernetes.io/managed-by: Helm`` / ``meta.helm.sh/release-name`` — taking it
silently would fight that owner (and its prune would later delete specc's copy), so
plan shows ``adopt (owned by …)`` and sync refuses it without ``--adopt`` or the app's
``adopt: true``.

Pure: the live object comes from the LIST or GET observe already made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from specc.objects import MANAGED_BY
from specc.sync.inventory import PART_OF

HELM_RELEASE = "meta.helm.sh/release-name"
HELM_NAMESPACE = "meta.helm.sh/release-namespace"


def owner_of(live: dict[str, Any], applyset: str, known_sets: Mapping[str, str]) -> str:
    """Return who owns ``live`` other than ``applyset`` ("" when free or already ours).

    ``known_sets`` maps the ApplySet ids of specc's parents on the server to their
    description, so that another specc cluster is named as such.
    """
    meta = live.get("metadata") or {}
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    part_of = str(labels.get(PART_OF) or "")
    if part_of == applyset:
        return ""
    if part_of:
        known = known_sets.get(part_of)
        if known:
            return known
        if labels.get(MANAGED_BY) == "specc":
            return f"another specc ApplySet {part_of}"
        return f"ApplySet {part_of}"
    release = notes.get(HELM_RELEASE)
    if release:
        ns = notes.get(HELM_NAMESPACE) or meta.get("namespace") or ""
        return f"Helm release {ns}/{release}" if ns else f"Helm release {release}"
    if labels.get(MANAGED_BY) == "Helm":
        return "Helm"
    return ""

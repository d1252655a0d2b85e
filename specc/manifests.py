"""The objects of a ``Manifests`` app as Kubernetes reads them: ``List`` kinds flattened,
each object with the place in the fleet where it is written.

``kubectl apply -f`` accepts ``kind: List`` (and the typed lists the API server
returns: ``ConfigMapList``, ``RoleBindingList``...) and applies their ``items`` one by
one; upstream manifest sets are often shipped that way. Validation, compilation and the
CRD lookup all walk the same flattened sequence, so an item of a list is checked, placed
and located exactly like an object written on its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from specc.errors import Position
from specc.load import Document, FieldPath, SourceMap


@dataclass(frozen=True)
class ManifestObject:
    """One object of a Manifests app and where it is written (document and path in it)."""

    body: Any
    source: SourceMap
    loc: FieldPath

    @property
    def position(self) -> Position:
        return self.source.value(self.loc)

    @property
    def field_path(self) -> str:
        """The dotted path of the object in its document (``spec.objects[2].items[0]``)."""
        out = ""
        for p in self.loc:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
        return out


def is_list(obj: Any) -> bool:
    """Return whether ``obj`` is a list object (``kind: List``, ``ConfigMapList``...)."""
    if not isinstance(obj, dict):
        return False
    kind = obj.get("kind")
    return (
        isinstance(kind, str)
        and kind.endswith("List")
        and isinstance(obj.get("apiVersion"), str)
        and "items" in obj
    )


def manifest_objects(
    objects: list[Any], source: SourceMap, files: list[Document]
) -> Iterator[ManifestObject]:
    """Yield the objects of a Manifests app: inline ones, then those of its files.

    The items of list objects take the list's place; a list inside a list is flattened
    too (``kubectl`` does the same). A list whose ``items`` is not a list is yielded
    as it is, for validation to report.
    """
    for i, obj in enumerate(objects):
        yield from _flatten(obj, source, ("spec", "objects", i))
    for doc in files:
        yield from _flatten(doc.data, doc.source, ())


def _flatten(
    obj: Any, source: SourceMap, loc: FieldPath, depth: int = 0
) -> Iterator[ManifestObject]:
    items = obj.get("items") if is_list(obj) else None
    if isinstance(items, list) and depth < 8:
        for i, item in enumerate(items):
            yield from _flatten(item, source, (*loc, "items", i), depth + 1)
        return
    yield ManifestObject(obj, source, loc)

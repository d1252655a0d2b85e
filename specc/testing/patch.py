"""The three non-apply patch formats: JSON merge, JSON patch, strategic merge.

JSON merge patch follows RFC 7386, JSON patch RFC 6902. Strategic merge patch follows
``k8s.io/apimachinery/pkg/util/strategicpatch`` for what clients send in practice:
lists with ``x-kubernetes-patch-strategy: merge`` merge by their patch merge key (or
as sets for primitives), ``null`` deletes, and the ``$patch: delete|replace``
directive; other lists are replaced.
"""

from __future__ import annotations

from typing import Any

from specc.testing.schema import LIST, UNTYPED_NODE, TypeNode


class PatchError(ValueError):
    """The patch cannot be applied (bad document, failed ``test``, missing path)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with the RFC 7386 merge patch applied."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc: Any, parts: list[str]) -> Any:
    node = doc
    for part in parts:
        if isinstance(node, dict):
            if part not in node:
                raise PatchError(f"doc is missing path: {part}")
            node = node[part]
        elif isinstance(node, list):
            try:
                node = node[int(part)]
            except (ValueError, IndexError) as exc:
                raise PatchError(f"doc is missing path: {part}") from exc
        else:
            raise PatchError(f"doc is missing path: {part}")
    return node


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def json_patch(target: Any, operations: Any) -> Any:
    """Return ``target`` with the RFC 6902 operations applied (the target is not modified)."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations")
    doc = _copy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op:
            raise PatchError("json patch operation without 'op'")
        kind = op["op"]
        parts = _pointer(str(op.get("path", "")))
        if kind == "test":
            if _container(doc, parts) != op.get("value"):
                raise PatchError(f"testing value {op.get('path')} failed")
            continue
        if kind in ("move", "copy"):
            source = _pointer(str(op.get("from", "")))
            value = _copy(_container(doc, source))
            if kind == "move":
                doc = _remove(doc, source)
            doc = _add(doc, parts, value)
            continue
        if kind == "add":
            doc = _add(doc, parts, _copy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _container(doc, parts)
            doc = _remove(doc, parts)
            doc = _add(doc, parts, _copy(op.get("value")))
        else:
            raise PatchError(f"unexpected json patch operation {kind!r}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _container(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                index = int(last)
            except ValueError as exc:
                raise PatchError(f"invalid index {last!r}") from exc
            if index < 0 or index > len(parent):
                raise PatchError(f"index out of range: {index}")
            parent.insert(index, value)
    else:
        raise PatchError(f"doc is missing path: {last}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        return None
    parent = _container(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"unable to remove nonexistent key: {last}")
        del parent[last]
    elif isinstance(parent, list):
        try:
            del parent[int(last)]
        except (ValueError, IndexError) as exc:
            raise PatchError(f"unable to remove index {last}") from exc
    return doc


def strategic_merge_patch(target: Any, patch: Any, node: TypeNode) -> Any:
    """Return ``target`` with a strategic merge patch applied, typed by ``node``."""
    if not isinstance(patch, dict):
        return _copy(patch)
    if patch.get("$patch") == "replace":
        return {k: _copy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            out.pop(key, None)
            continue
        child = node.child(key) or UNTYPED_NODE
        if child.kind == LIST and isinstance(value, list):
            out[key] = _strategic_list(out.get(key), value, child)
        elif isinstance(value, dict):
            result = strategic_merge_patch(out.get(key), value, child)
            if result is None:
                out.pop(key, None)
            else:
                out[key] = result
        else:
            out[key] = _copy(value)
    return out


def _strategic_list(target: Any, patch: list[Any], node: TypeNode) -> list[Any]:
    strategy = str(node.raw.get("x-kubernetes-patch-strategy", ""))
    merge_key = node.raw.get("x-kubernetes-patch-merge-key")
    current = list(target) if isinstance(target, list) else []
    if "merge" not in strategy.split(","):
        return [_copy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    if not merge_key:
        out = list(current)
        for value in patch:
            if value not in out:
                out.append(_copy(value))
        return out
    for item in patch:
        if not isinstance(item, dict):
            continue
        if item.get("$patch") == "replace":
            return [_copy(v) for v in patch if v is not item]
        key = item.get(merge_key)
        index = next(
            (i for i, v in enumerate(current) if isinstance(v, dict) and v.get(merge_key) == key),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del current[index]
            continue
        if index is None:
            current.append(strategic_merge_patch({}, item, node.item()))
        else:
            current[index] = strategic_merge_patch(current[index], item, node.item())
    return current

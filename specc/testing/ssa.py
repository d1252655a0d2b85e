"""Structured-merge-diff: typed field sets, merge, compare, prune and ownership.

Pure functions over JSON values and :mod:`specc.testing.schema` type nodes, ported
from ``sigs.k8s.io/structured-merge-diff/v4`` (``typed/tofieldset.go``,
``typed/merge.go``, ``typed/compare.go``, ``typed/remove.go``, ``merge/update.go``) and
the API server's field manager (``managedfields/internal``). See
https://kubernetes.io/docs/reference/using-api/server-side-apply/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from specc.testing import fieldpath as fp
from specc.testing.fieldpath import MEMBER, FieldSet
from specc.testing.schema import LIST, MAP, SCALAR, STRUCT, UNTYPED, TypeNode

_ABSENT: Any = object()
_MARK: FieldSet = {}


class TypedError(ValueError):
    """A value does not fit its schema (unknown field, wrong type, list item without key)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def _effective_kind(node: TypeNode, value: Any) -> int:
    if node.kind != UNTYPED:
        return node.kind
    if isinstance(value, dict):
        return MAP
    if isinstance(value, list):
        return LIST
    return SCALAR


def _is_atomic(node: TypeNode, kind: int) -> bool:
    if kind == SCALAR:
        return True
    if kind == LIST:
        return node.kind == UNTYPED or node.list_type == "atomic"
    return node.atomic


def item_element(item: Any, node: TypeNode, path: str, index: int) -> str:
    """Return the path element naming one item of a granular list."""
    if node.list_type == "set":
        return fp.value_element(item)
    if not isinstance(item, dict):
        raise TypedError(f"{path}[{index}]", "expected map, got " + _json_type(item))
    key: dict[str, Any] = {}
    for name in node.keys:
        if name in item and item[name] is not None:
            key[name] = item[name]
        elif name in node.key_defaults:
            key[name] = node.key_defaults[name]
        else:
            raise TypedError(
                path,
                f"element {index}: associative list with keys has an element that omits "
                f'key field "{name}" (and doesn\'t have default value)',
            )
    return fp.key_element(key)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "numeric"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "map"


_SCALAR_OK: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "int-or-string": (int, str),
    "quantity": (int, float, str),
}

_SCALAR_NAMES = {
    "string": "string",
    "integer": "numeric (int or float)",
    "number": "numeric (int or float)",
    "boolean": "boolean",
    "int-or-string": "string or numeric",
    "quantity": "string or numeric",
}


def _check_scalar(value: Any, node: TypeNode, path: str) -> None:
    if value is None or (isinstance(value, (dict, list)) and node.kind == SCALAR):
        if value is None:
            return
        raise TypedError(
            path, f"expected {_SCALAR_NAMES.get(node.scalar, 'scalar')}, got {_json_type(value)}"
        )
    allowed = _SCALAR_OK.get(node.scalar)
    if allowed is None:
        return
    if isinstance(value, bool) and node.scalar != "boolean":
        raise TypedError(path, f"expected {_SCALAR_NAMES[node.scalar]}, got bool")
    if not isinstance(value, allowed):
        raise TypedError(path, f"expected {_SCALAR_NAMES[node.scalar]}, got {_json_type(value)}")


def to_field_set(value: Any, node: TypeNode, path: str = "") -> FieldSet:
    """Return the set of fields ``value`` sets (``ToFieldSet``), checking it against ``node``.

    Raises :class:`TypedError` for fields the schema does not declare and for values of
    the wrong type, as the API server does when it builds the typed apply patch.
    """
    kind = _effective_kind(node, value)
    if kind == SCALAR:
        _check_scalar(value, node, path)
        return {MEMBER: _MARK}
    if value is None:
        return {MEMBER: _MARK}
    if kind in (STRUCT, MAP):
        if not isinstance(value, dict):
            raise TypedError(path, f"expected map, got {_json_type(value)}")
        if node.atomic:
            return {MEMBER: _MARK}
        out: FieldSet = {}
        for key, child_value in value.items():
            child = node.child(key)
            child_path = f"{path}.{key}"
            if child is None:
                raise TypedError(child_path, "field not declared in schema")
            sub = to_field_set(child_value, child, child_path)
            declared = node.kind == STRUCT and key in node.fields
            if (
                child_value is None
                or (isinstance(child_value, dict) and not child_value)
                or not declared
            ):
                if MEMBER not in sub:
                    sub = {**sub, MEMBER: _MARK}
            elif (
                MEMBER in sub
                and child.kind != SCALAR
                and not _is_atomic(child, _effective_kind(child, child_value))
            ):
                sub = {k: v for k, v in sub.items() if k != MEMBER}
            if sub:
                out[fp.field_element(key)] = sub
        return out
    if not isinstance(value, list):
        raise TypedError(path, f"expected list, got {_json_type(value)}")
    if _is_atomic(node, kind):
        return {MEMBER: _MARK}
    out = {}
    item_node = node.item()
    for index, item in enumerate(value):
        element = item_element(item, node, path, index)
        sub = to_field_set(item, item_node, f"{path}[{index}]")
        out[element] = {**sub, MEMBER: _MARK}
    return out


def _list_index(items: list[Any], node: TypeNode, path: str) -> tuple[list[str], dict[str, Any]]:
    elements: list[str] = []
    by_element: dict[str, Any] = {}
    for index, item in enumerate(items):
        element = item_element(item, node, path, index)
        elements.append(element)
        by_element.setdefault(element, item)
    return elements, by_element


def merge(live: Any, config: Any, node: TypeNode, path: str = "") -> Any:
    """Return ``config`` merged into ``live`` by type (``TypedValue.Merge``): config wins."""
    if live is _ABSENT or live is None or config is None:
        return config
    kind = _effective_kind(node, config)
    if kind == SCALAR or _is_atomic(node, kind) or _effective_kind(node, live) != kind:
        return config
    if kind in (STRUCT, MAP):
        if not isinstance(live, dict):
            return config
        out = dict(live)
        for key, child_value in config.items():
            child = node.child(key) or _untyped()
            if child_value is None:
                out.pop(key, None)
                continue
            out[key] = merge(live.get(key, _ABSENT), child_value, child, f"{path}.{key}")
        return out
    if not isinstance(live, list):
        return config
    return _merge_list(live, config, node, path)


def _untyped() -> TypeNode:
    from specc.testing.schema import UNTYPED_NODE

    return UNTYPED_NODE


def _merge_list(live: list[Any], config: list[Any], node: TypeNode, path: str) -> list[Any]:
    # Port of merge.go visitListItems: shared items follow the config's order, items only
    # in live keep their place relative to them, new items land where the config puts them.
    item_node = node.item()
    lhs_pes, lhs_items = _list_index(live, node, path)
    rhs_pes, rhs_items = _list_index(config, node, path)
    shared = [pe for pe in rhs_pes if pe in lhs_items]
    shared_at = 0
    next_shared = shared[0] if shared else None
    merged_rhs: set[str] = set()
    out: list[Any] = []
    li = ri = 0
    while li < len(lhs_pes) or ri < len(rhs_pes):
        if li < len(lhs_pes) and ri < len(rhs_pes):
            pe = lhs_pes[li]
            if pe == rhs_pes[ri]:
                merged_rhs.add(pe)
                out.append(merge(lhs_items[pe], rhs_items[pe], item_node, path))
                li += 1
                ri += 1
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
                continue
            if pe in rhs_items and next_shared is not None and next_shared != pe:
                li += 1
                continue
        if li < len(lhs_pes):
            pe = lhs_pes[li]
            if pe not in rhs_items:
                out.append(live[li])
                li += 1
                continue
            if pe in merged_rhs:
                li += 1
                continue
        if ri < len(rhs_pes):
            pe = rhs_pes[ri]
            merged_rhs.add(pe)
            lhs_item = lhs_items.get(pe, _ABSENT)
            out.append(merge(lhs_item, rhs_items[pe], item_node, path))
            ri += 1
            if next_shared is not None and next_shared == pe:
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
    return out


@dataclass
class Comparison:
    """Paths that an operation added or modified, and paths it removed."""

    changed: FieldSet = field(default_factory=dict)
    removed: FieldSet = field(default_factory=dict)


def compare(old: Any, new: Any, node: TypeNode) -> Comparison:
    """Return what changed from ``old`` to ``new`` (``TypedValue.Compare``)."""
    changed, removed = _compare(old, new, node, "")
    changed.pop(MEMBER, None)
    removed.pop(MEMBER, None)
    return Comparison(changed, removed)


def _compare(old: Any, new: Any, node: TypeNode, path: str) -> tuple[FieldSet, FieldSet]:
    sample = new if new is not _ABSENT and new is not None else old
    kind = _effective_kind(node, sample)
    if kind == SCALAR or _is_atomic(node, kind):
        if old is _ABSENT:
            return {MEMBER: _MARK}, {}
        if new is _ABSENT:
            return {}, {MEMBER: _MARK}
        if old != new or type(old) is not type(new):
            return {MEMBER: _MARK}, {}
        return {}, {}
    changed: FieldSet = {}
    removed: FieldSet = {}
    if old is _ABSENT:
        changed[MEMBER] = _MARK
    elif new is _ABSENT:
        removed[MEMBER] = _MARK
    if kind in (STRUCT, MAP):
        left = old if isinstance(old, dict) else {}
        right = new if isinstance(new, dict) else {}
        keys = list(left) + [k for k in right if k not in left]
        for key in keys:
            child = node.child(key) or _untyped()
            c, r = _compare(left.get(key, _ABSENT), right.get(key, _ABSENT), child, path)
            element = fp.field_element(key)
            if c:
                changed[element] = c
            if r:
                removed[element] = r
        return changed, removed
    left_list = old if isinstance(old, list) else []
    right_list = new if isinstance(new, list) else []
    _, left_items = _list_index(left_list, node, path)
    right_pes, right_items = _list_index(right_list, node, path)
    item_node = node.item()
    for element in list(left_items) + [pe for pe in right_pes if pe not in left_items]:
        c, r = _compare(
            left_items.get(element, _ABSENT), right_items.get(element, _ABSENT), item_node, path
        )
        if c:
            changed[element] = c
        if r:
            removed[element] = r
    return changed, removed


def remove_items(value: Any, fields: FieldSet, node: TypeNode) -> Any:
    """Return ``value`` without the member paths of ``fields`` (whole subtrees go)."""
    if not fields or value is None:
        return value
    kind = _effective_kind(node, value)
    if kind in (STRUCT, MAP) and isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, child_value in value.items():
            sub = fields.get(fp.field_element(key))
            if sub is None:
                out[key] = child_value
            elif MEMBER in sub:
                continue
            else:
                out[key] = remove_items(child_value, sub, node.child(key) or _untyped())
        return out
    if kind == LIST and isinstance(value, list) and not _is_atomic(node, kind):
        item_node = node.item()
        kept = []
        for index, item in enumerate(value):
            sub = fields.get(item_element(item, node, "", index))
            if sub is None:
                kept.append(item)
            elif MEMBER not in sub:
                kept.append(remove_items(item, sub, item_node))
        return kept
    return value


def ensure_named_fields(fields: FieldSet, node: TypeNode) -> FieldSet:
    """Return ``fields`` with every declared struct field on a path made a member too."""
    out: FieldSet = {}
    for key, sub in fields.items():
        if key == MEMBER:
            out[MEMBER] = _MARK
            continue
        if key.startswith("f:"):
            name = key[2:]
            child = node.child(name) or _untyped()
            converted = ensure_named_fields(sub, child)
            if node.kind == STRUCT and name in node.fields:
                converted = {**converted, MEMBER: _MARK}
            out[key] = converted
        else:
            out[key] = ensure_named_fields(sub, node.item())
    return out


@dataclass
class ManagedEntry:
    """One ``metadata.managedFields`` entry: a manager's field set for one operation."""

    manager: str
    operation: str
    api_version: str
    time: str
    fields: FieldSet
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Return the key the API server merges entries by (apiVersion ignored for appliers)."""
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def describe(self) -> str:
        """Return the manager as conflict messages print it (``"kubectl-scale" using apps/v1``)."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


def decode_managed_fields(raw: Any) -> list[ManagedEntry]:
    """Return the entries of a ``metadata.managedFields`` list."""
    entries: list[ManagedEntry] = []
    for item in raw or []:
        entries.append(
            ManagedEntry(
                manager=str(item.get("manager", "")),
                operation=str(item.get("operation", "")),
                api_version=str(item.get("apiVersion", "")),
                time=str(item.get("time", "")),
                fields=fp.from_fields_v1(item.get("fieldsV1") or {}),
                subresource=str(item.get("subresource", "")),
            )
        )
    return entries


def encode_managed_fields(entries: list[ManagedEntry]) -> list[dict[str, Any]]:
    """Return entries in the order the API server writes them (operation, time, manager)."""
    ordered = sorted(
        entries, key=lambda e: (e.operation, e.time, e.manager, e.api_version, e.subresource)
    )
    out: list[dict[str, Any]] = []
    for entry in ordered:
        item: dict[str, Any] = {
            "manager": entry.manager,
            "operation": entry.operation,
            "apiVersion": entry.api_version,
            "time": entry.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": fp.to_fields_v1(entry.fields),
        }
        if not entry.time:
            del item["time"]  # kube-apiserver records none for /scale writes
        if entry.subresource:
            item["subresource"] = entry.subresource
        out.append(item)
    return out


@dataclass
class Conflict:
    """A field the applier would change that another manager owns."""

    manager: ManagedEntry
    path: tuple[str, ...]


class ConflictError(Exception):
    """An apply without force would change fields other managers own."""

    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflict_message(conflicts))
        self.conflicts = conflicts


def conflict_message(conflicts: list[Conflict]) -> str:
    """Return the API server's message for a set of conflicts (``getConflictMessage``)."""
    if len(conflicts) == 1:
        only = conflicts[0]
        return (
            f"Apply failed with 1 conflict: conflict with {only.manager.describe()}: "
            f"{fp.path_text(only.path)}"
        )
    by_manager: dict[str, list[str]] = {}
    for conflict in conflicts:
        by_manager.setdefault(conflict.manager.describe(), []).append(fp.path_text(conflict.path))
    lines: list[str] = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {path}" for path in by_manager[manager])
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def _with_changes(
    entries: list[ManagedEntry],
    comparison: Comparison,
    acting: tuple[str, str, str, str],
    force: bool,
) -> list[ManagedEntry]:
    conflicts: list[Conflict] = []
    touched = fp.union(comparison.changed, {})
    result: list[ManagedEntry] = []
    for entry in entries:
        if entry.identity == acting:
            result.append(entry)
            continue
        overlap = fp.intersection(entry.fields, touched)
        if overlap:
            conflicts.extend(Conflict(entry, path) for path in fp.members(overlap))
        remaining = fp.difference(fp.difference(entry.fields, overlap), comparison.removed)
        if remaining is not entry.fields:
            entry = ManagedEntry(
                entry.manager,
                entry.operation,
                entry.api_version,
                entry.time,
                remaining,
                entry.subresource,
            )
        result.append(entry)
    if conflicts and not force:
        raise ConflictError(conflicts)
    return [e for e in result if e.fields]


@dataclass
class Outcome:
    """The object an operation produces and the managed fields that go with it."""

    obj: Any
    managed: list[ManagedEntry]
    changed: bool


def apply(
    live: Any,
    config: Any,
    node: TypeNode,
    entries: list[ManagedEntry],
    applier: ManagedEntry,
    force: bool,
    ignore: FieldSet,
) -> Outcome:
    """Return the result of manager ``applier`` applying ``config`` over ``live`` (``Updater.Apply``).

    ``applier.fields`` is replaced by the config's field set. Fields the applier owned
    before and no longer sets are removed unless another manager still owns them.
    Raises :class:`ConflictError` when ``force`` is false and another manager owns a
    field the config changes.
    """
    merged = merge(live, config, node)
    new_set = fp.recursive_difference(to_field_set(config, node), ignore)
    new_set.pop(MEMBER, None)
    previous = next((e for e in entries if e.identity == applier.identity), None)
    others = [e for e in entries if e.identity != applier.identity]
    # Only what the applier owned before and no longer sets can be pruned; an unchanged
    # config (the common case) skips the whole computation.
    if previous is not None and fp.difference(previous.fields, new_set):
        managed_all = new_set
        for entry in others:
            managed_all = fp.union(managed_all, entry.fields)
        last = ensure_named_fields(previous.fields, node)
        # Keep what the new config or another manager claims; the rest the applier used
        # to own and dropped from its config goes (merge/update.go prune).
        merged_set = ensure_named_fields(to_field_set(merged, node), node)
        removable = fp.difference(
            fp.intersection(last, merged_set),
            fp.union(ensure_named_fields(managed_all, node), ensure_named_fields(new_set, node)),
        )
        removable = fp.recursive_difference(removable, ignore)
        removable.pop(MEMBER, None)
        if removable:
            merged = remove_items(merged, removable, node)
    comparison = compare(live, merged, node)
    comparison.changed = fp.recursive_difference(comparison.changed, ignore)
    comparison.removed = fp.recursive_difference(comparison.removed, ignore)
    updated_others = _with_changes(others, comparison, applier.identity, force)
    changed = merged != live
    entry = ManagedEntry(
        applier.manager,
        "Apply",
        applier.api_version,
        # managedFieldsUpdater stamps a time only when the apply changed the object: a
        # no-op apply keeps the applier's old time, and a new applier's entry gets none.
        applier.time if changed else (previous.time if previous is not None else ""),
        new_set,
        applier.subresource,
    )
    managed = [*updated_others, entry] if new_set else updated_others
    return Outcome(merged, managed, changed)


def update(
    live: Any,
    new: Any,
    node: TypeNode,
    entries: list[ManagedEntry],
    updater: ManagedEntry,
    ignore: FieldSet,
) -> Outcome:
    """Return managed fields after manager ``updater`` replaced ``live`` by ``new`` (``Updater.Update``).

    The updater takes ownership of every field it added or modified, away from other
    managers; fields it removed are dropped from every set.
    """
    comparison = compare(live, new, node)
    comparison.changed = fp.recursive_difference(comparison.changed, ignore)
    comparison.removed = fp.recursive_difference(comparison.removed, ignore)
    acting = ("\0current-operation", "Update", "", "")
    updated = _with_changes(entries, comparison, acting, True)
    gained = comparison.changed
    if not gained:
        return Outcome(new, updated, new != live)
    result: list[ManagedEntry] = []
    found = False
    for entry in updated:
        if entry.identity == updater.identity:
            entry = ManagedEntry(
                entry.manager,
                entry.operation,
                updater.api_version,
                updater.time,
                fp.union(entry.fields, gained),
                entry.subresource,
            )
            found = True
        result.append(entry)
    if not found:
        result.append(
            ManagedEntry(
                updater.manager,
                "Update",
                updater.api_version,
                updater.time,
                gained,
                updater.subresource,
            )
        )
    return Outcome(new, result, new != live)

"""Write stage: a cluster's desired objects → files a reviewer (and kubectl) can read.

Layout: ``DIR/<cluster>/<namespace or _cluster>/<kind>-<name>.yaml``, one object per
file, keys sorted as ``kubectl get -o yaml`` prints them, plus ``DIR/<cluster>/index.json``.
The same input always gives the same bytes; files from an earlier render that the
fleet no longer declares are removed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from specc.objects import ClusterRender, DesiredObject, ObjectKey

try:
    from yaml import CSafeDumper as _BaseDumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]

INDEX = "index.json"


class _Dumper(_BaseDumper):
    pass


# The emitter below writes the YAML that ``yaml.dump(sort_keys=True,
# default_flow_style=False)`` would (block style, two-space indent, list items at the
# key's indent, multi-line strings as literal blocks), for the plain data a rendered
# object is made of, about 10× faster: PyYAML's Python representer was 80 % of
# `specc render`'s time on large fleets. Strings are written plain only when every
# reader agrees they are strings: PyYAML (YAML 1.1) and go-yaml, which kubectl uses and
# which also reads y/n as booleans and 1e3 as a number; anything else is quoted.

_PLAIN_CHAR = r"[A-Za-z0-9_./@+=,;()%$~-]"
_PLAIN_WORD = rf"{_PLAIN_CHAR}+(?::{_PLAIN_CHAR}+)*"
_PLAIN = re.compile(rf"[A-Za-z0-9_/(]{_PLAIN_CHAR}*(?::{_PLAIN_CHAR}+)*(?: {_PLAIN_WORD})*")
_NUMBER_LIKE = re.compile(
    r"[-+]?[0-9._]*[0-9][0-9._]*(?:[eE][-+]?[0-9]+)?|[-+]?0[xXoObB][0-9a-fA-F_]+|[-+]?\.[A-Za-z]+"
)
_GO_YAML_BOOLS = frozenset({"y", "Y", "n", "N"})
_RESOLVER = yaml.resolver.Resolver()


def _resolve(value: str) -> str:
    """Return the tag PyYAML gives ``value`` as a plain scalar."""
    return str(_RESOLVER.resolve(yaml.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]


@functools.lru_cache(maxsize=65536)
def _string(value: str) -> str:
    """Return ``value`` as an inline YAML scalar (plain, single- or double-quoted)."""
    if (
        _PLAIN.fullmatch(value)
        and value not in _GO_YAML_BOOLS
        and not _NUMBER_LIKE.fullmatch(value)
        and _resolve(value) == "tag:yaml.org,2002:str"
    ):
        return value
    if value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    # Control or unusual characters: PyYAML knows every escape of a double-quoted scalar.
    quoted = yaml.dump(
        value, Dumper=_BaseDumper, default_style='"', width=1_000_000, allow_unicode=True
    )
    return quoted.rstrip("\n")


def _literal_lines(value: str) -> tuple[str, list[str]] | None:
    """Return the chomping indicator and lines of ``value`` as a literal block, if it can be one."""
    if not value or value[0] in " \t\n":
        return None
    lines = value.split("\n")
    if value.endswith("\n"):
        lines.pop()
        chomp = "+" if value.endswith("\n\n") else ""
    else:
        chomp = "-"
    for line in lines:
        # Trailing blanks would be lost, other control characters cannot stand in a block.
        if line.endswith((" ", "\t")) or not line.replace("\t", "").isprintable():
            return None
    return chomp, lines


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(_Dumper.represent_float(_Dumper(io.StringIO()), value).value)
    raise TypeError(f"cannot write a {type(value).__name__} as YAML")


def _emit_value(value: Any, indent: int, head: str, out: list[str]) -> None:
    """Append the lines of ``value`` that follows ``head`` (``key:`` or ``-``) at ``indent``."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            out.append(f"{pad}{head} {{}}")
        elif head == "-":
            start = len(out)
            _emit_mapping(value, indent + 2, out)
            out[start] = f"{pad}- {out[start][indent + 2 :]}"
        else:
            out.append(f"{pad}{head}")
            _emit_mapping(value, indent + 2, out)
    elif isinstance(value, list):
        if not value:
            out.append(f"{pad}{head} []")
        elif head == "-":
            start = len(out)
            _emit_sequence(value, indent + 2, out)
            out[start] = f"{pad}- {out[start][indent + 2 :]}"
        else:
            out.append(f"{pad}{head}")
            _emit_sequence(value, indent, out)
    elif isinstance(value, str) and "\n" in value and (block := _literal_lines(value)):
        chomp, lines = block
        out.append(f"{pad}{head} |{chomp}")
        inner = " " * (indent + 2)
        out.extend(f"{inner}{line}" if line else "" for line in lines)
    else:
        out.append(f"{pad}{head} {_scalar(value)}")


def _emit_mapping(value: dict[str, Any], indent: int, out: list[str]) -> None:
    for key in sorted(value):
        _emit_value(value[key], indent, _string(key) + ":", out)


def _emit_sequence(value: list[Any], indent: int, out: list[str]) -> None:
    for item in value:
        _emit_value(item, indent, "-", out)


def to_yaml(body: dict[str, Any]) -> str:
    """Return ``body`` as YAML with sorted keys, the form every output of specc uses."""
    out: list[str] = []
    _emit_mapping(body, 0, out)
    return "\n".join(out) + "\n" if out else "{}\n"


def object_path(obj: DesiredObject) -> str:
    """Return the object's file path inside its cluster directory."""
    folder = obj.namespace or "_cluster"
    return f"{folder}/{obj.kind.lower()}-{obj.name}.yaml"


def object_paths(render: ClusterRender) -> dict[ObjectKey, str]:
    """Return each object's file path; kinds of two groups that would share a file get
    their group in the name (``cluster.postgresql.cnpg.io-main.yaml``)."""
    paths = {o.key: object_path(o) for o in render.objects}
    count = Counter(paths.values())
    for o in render.objects:
        if count[paths[o.key]] > 1 and o.key.group:
            folder = o.namespace or "_cluster"
            paths[o.key] = f"{folder}/{o.kind.lower()}.{o.key.group}-{o.name}.yaml"
    return paths


@dataclass
class WriteResult:
    written: int = 0
    unchanged: int = 0
    removed: int = 0


def header(command: str, obj: DesiredObject) -> str:
    return (
        f"# Generated by `{command}`; do not edit.\n# Source: {obj.source.path}:{obj.source.line}\n"
    )


def index(
    render: ClusterRender,
    paths: dict[ObjectKey, str] | None = None,
    texts: dict[ObjectKey, str] | None = None,
) -> list[dict[str, Any]]:
    """Return every object's identity, file, content hash and source.

    The hash is the SHA-256 of the object's YAML as written (sorted keys, so canonical).
    """
    paths = paths if paths is not None else object_paths(render)
    texts = texts if texts is not None else {o.key: to_yaml(o.body) for o in render.objects}
    return [
        {
            "apiVersion": o.api_version,
            "kind": o.kind,
            "namespace": o.namespace or "",
            "name": o.name,
            "file": paths[o.key],
            "hash": "sha256:" + hashlib.sha256(texts[o.key].encode("utf-8")).hexdigest(),
            "source": f"{o.source.path}:{o.source.line}",
            "origin": o.origin,
        }
        for o in render.objects
    ]


def _existing_files(root: Path) -> tuple[set[str], list[str]]:
    """Return the files (relative paths) and folders (deepest first) under ``root``."""
    files: set[str] = set()
    folders: list[str] = []
    for dirpath, _, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        if prefix:
            folders.append(prefix[:-1])
        files.update(prefix + f for f in filenames)
    folders.sort(key=lambda f: (-f.count("/"), f))
    return files, folders


def write_render(render: ClusterRender, out: Path, command: str) -> WriteResult:
    """Write one cluster's objects under ``out/<cluster>``; remove files no longer declared.

    A file whose bytes would not change is not written, so a re-render of the same
    commit writes nothing and keeps file times.
    """
    root = out / render.cluster
    result = WriteResult()
    paths = object_paths(render)
    texts = {obj.key: to_yaml(obj.body) for obj in render.objects}
    wanted: dict[str, str] = {}
    for obj in render.objects:
        wanted[paths[obj.key]] = header(command, obj) + texts[obj.key]
    wanted[INDEX] = (
        json.dumps(
            {
                "cluster": render.cluster,
                "kubernetesVersion": render.kubernetes_version,
                "objects": index(render, paths, texts),
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    # One walk of the earlier render instead of a stat per file: creating thousands of
    # files is what a fresh render spends its time on.
    existing, folders = _existing_files(root) if root.is_dir() else (set(), [])
    made: set[Path] = set()
    for rel, text in wanted.items():
        data = text.encode("utf-8")
        path = root / rel
        if rel in existing and path.read_bytes() == data:
            result.unchanged += 1
            continue
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(data)
        result.written += 1
    for rel in sorted(existing - wanted.keys()):
        if rel.endswith((".yaml", ".json")):
            (root / rel).unlink()
            result.removed += 1
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty: files specc did not write
            (root / folder).rmdir()
    return result


def remove_stale_clusters(out: Path, clusters: list[str]) -> int:
    """Remove cluster folders under ``out`` that an earlier render wrote for clusters now gone."""
    removed = 0
    if not out.is_dir():
        return 0
    for child in sorted(out.iterdir()):
        if child.is_dir() and child.name not in clusters and (child / INDEX).is_file():
            for path in sorted(child.rglob("*"), reverse=True):
                if path.is_file():
                    path.unlink()
                    removed += 1
                else:
                    path.rmdir()
            child.rmdir()
    return removed

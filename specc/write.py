"""Write stage: a cluster's desired objects → files a reviewer (and kubectl) can read.

Layout: ``DIR/<cluster>/<namespace or _cluster>/<kind>-<name>.yaml``, one object per
file, keys sorted as ``kubectl get -o yaml`` prints them, plus ``DIR/<cluster>.index.json``
next to the folder (``kubectl apply -R -f DIR/<cluster>`` reads only objects). The same
fleet always gives the same bytes, wherever it is rendered from and to; files an earlier
render wrote that the fleet no longer declares are removed, and no other file is.
"""

from __future__ import annotations

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

from specc.errors import WriteError
from specc.objects import ClusterRender, DesiredObject, ObjectKey

try:
    from yaml import CSafeDumper as _BaseDumper
except ImportError:  # pragma: no cover
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]

#: A cluster's index is ``OUT/<cluster>.index.json``; earlier versions wrote it inside the
#: cluster's folder, where ``kubectl apply -R`` read it as an object.
INDEX_SUFFIX = ".index.json"
LEGACY_INDEX = "index.json"


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


#: Longest file or folder name written: file systems allow 255 bytes; a margin is left for
#: the temporary and backup names editors and tools add.
MAX_NAME_BYTES = 200
#: First line of every file render writes; render removes only files that start with it.
HEADER = "# Generated by specc; do not edit.\n"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, suffix: str = "") -> str:
    """Return ``text + suffix`` as one file name: itself if it is a plain, short name,
    else a readable part of it plus a hash of all of it (deterministic, collision-free).

    Object names become file names, and a name may hold ``/``, ``..`` or 253 characters
    (a valid DNS subdomain is longer than some file systems allow with a kind prefix).
    """
    if _SAFE_NAME.fullmatch(text) and len((text + suffix).encode("utf-8")) <= MAX_NAME_BYTES:
        return text + suffix
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    readable = _UNSAFE_RUN.sub("_", text).strip("._-")[: MAX_NAME_BYTES - 40]
    return f"{readable}-{digest}{suffix}" if readable else f"{digest}{suffix}"


def object_path(obj: DesiredObject) -> str:
    """Return the object's file path inside its cluster directory."""
    folder = safe_name(obj.namespace) if obj.namespace else "_cluster"
    return f"{folder}/{safe_name(f'{obj.kind.lower()}-{obj.name}', '.yaml')}"


def object_paths(render: ClusterRender) -> dict[ObjectKey, str]:
    """Return each object's file path; kinds of two groups that would share a file get
    their group in the name (``cluster.postgresql.cnpg.io-main.yaml``)."""
    paths = {o.key: object_path(o) for o in render.objects}
    count = Counter(paths.values())
    for o in render.objects:
        if count[paths[o.key]] > 1 and o.key.group:
            folder = safe_name(o.namespace) if o.namespace else "_cluster"
            stem = f"{o.kind.lower()}.{o.key.group}-{o.name}"
            paths[o.key] = f"{folder}/{safe_name(stem, '.yaml')}"
    return paths


@dataclass
class WriteResult:
    written: int = 0
    unchanged: int = 0
    removed: int = 0

    def add(self, other: WriteResult) -> None:
        self.written += other.written
        self.unchanged += other.unchanged
        self.removed += other.removed


def header(obj: DesiredObject) -> str:
    """Return the comment above an object: that it is generated, and from which spec.

    It names the spec file and the app, not a line or the command line: the same fleet
    gives the same bytes whatever ``--out``, the FLEET spelling or the current directory,
    and a comment added above a spec rewrites nothing.
    """
    return f"{HEADER}# Source: {source_of(obj)}\n"


def source_of(obj: DesiredObject) -> str:
    """Return ``path (origin)``: the spec file and the app that made ``obj``."""
    return f"{obj.source.path} ({obj.origin})" if obj.origin else obj.source.path


def index_name(cluster: str) -> str:
    """Return the file name of a cluster's index, next to (not in) its folder, so that
    ``kubectl apply -R -f OUT/<cluster>`` reads only objects."""
    return safe_name(cluster, INDEX_SUFFIX)


def index(
    render: ClusterRender,
    paths: dict[ObjectKey, str] | None = None,
    texts: dict[ObjectKey, str] | None = None,
) -> list[dict[str, Any]]:
    """Return every object's identity, file (relative to the index), content hash and source.

    The hash is the SHA-256 of the object's YAML as written (sorted keys, so canonical).
    """
    paths = paths if paths is not None else object_paths(render)
    texts = texts if texts is not None else {o.key: to_yaml(o.body) for o in render.objects}
    folder = safe_name(render.cluster)
    return [
        {
            "apiVersion": o.api_version,
            "kind": o.kind,
            "namespace": o.namespace or "",
            "name": o.name,
            "file": f"{folder}/{paths[o.key]}",
            "hash": "sha256:" + hashlib.sha256(texts[o.key].encode("utf-8")).hexdigest(),
            "source": o.source.path,
            "origin": o.origin,
        }
        for o in render.objects
    ]


def _inside(path: Path, folder: Path) -> Path:
    """Return ``path`` resolved; raise WriteError unless it stays inside ``folder``.

    Names come from the commit, and the output folder may hold links from an earlier
    run: every path is resolved (links followed) before anything is written or removed.
    """
    resolved = path.resolve()
    if not resolved.is_relative_to(folder):
        raise WriteError(f"{path}: refusing to write outside {folder} (resolves to {resolved})")
    return resolved


def _earlier_files(out: Path, cluster: str) -> tuple[set[str], list[Path]]:
    """Return the files (relative to ``out``) an earlier render recorded for ``cluster``,
    and the index files that recorded them."""
    files: set[str] = set()
    indexes: list[Path] = []
    candidates = [out / index_name(cluster), out / safe_name(cluster) / LEGACY_INDEX]
    for path in candidates:
        data = _read_index(path)
        if data is None:
            continue
        indexes.append(path)
        prefix = "" if path.parent == out else safe_name(cluster) + "/"
        for row in data:
            files.add(prefix + row)
    return files, indexes


def _read_index(path: Path) -> list[str] | None:
    """Return the files an index written by specc lists; None if it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        return None
    rows = [r.get("file") for r in data["objects"] if isinstance(r, dict)]
    return [r for r in rows if isinstance(r, str)]


def _remove_ours(out: Path, base: Path, rels: set[str]) -> tuple[int, set[Path]]:
    """Remove the files ``rels`` (relative to ``out``) that render wrote: those still
    starting with its header. Return how many, and the folders they were in."""
    removed = 0
    folders: set[Path] = set()
    for rel in sorted(rels):
        path = out / rel
        if path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(base):
            continue  # an index entry is data from disk: never follow it out of ``out``
        with path.open("rb") as f:
            if f.read(len(HEADER)) != HEADER.encode("utf-8"):
                continue  # someone else's now: leave it
        path.unlink()
        removed += 1
        folders.add(path.parent)
    return removed, folders


def _remove_empty_folders(folders: set[Path], stop: Path) -> None:
    """Remove each of ``folders`` and its parents up to ``stop`` while they are empty."""
    for folder in sorted(folders, key=lambda p: -len(p.parts)):
        current = folder
        while current != stop and stop in current.parents:
            try:
                current.rmdir()
            except OSError:  # not empty: files specc did not write
                break
            current = current.parent


def write_render(render: ClusterRender, out: Path) -> WriteResult:
    """Write one cluster's objects under ``out/<cluster>`` and its index next to it;
    remove the files an earlier render wrote that are no longer declared.

    A file whose bytes would not change is not written, so a re-render of the same
    commit writes nothing and keeps file times. Files render did not write are never
    removed. Every path is checked to stay inside ``out``.
    """
    out.mkdir(parents=True, exist_ok=True)
    base = out.resolve()
    folder = safe_name(render.cluster)
    result = WriteResult()
    paths = object_paths(render)
    texts = {obj.key: to_yaml(obj.body) for obj in render.objects}
    wanted: dict[str, str] = {}
    for obj in render.objects:
        wanted[f"{folder}/{paths[obj.key]}"] = header(obj) + texts[obj.key]
    wanted[index_name(render.cluster)] = (
        json.dumps(
            {
                "cluster": render.cluster,
                "generatedBy": "specc",
                "kubernetesVersion": render.kubernetes_version,
                "objects": index(render, paths, texts),
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )
    earlier, indexes = _earlier_files(out, render.cluster)
    # One walk of the earlier render instead of a stat per file: creating thousands of
    # files is what a fresh render spends its time on.
    existing = _existing_files(out, folder)
    checked: set[Path] = set()
    for rel, text in wanted.items():
        data = text.encode("utf-8")
        path = out / rel
        if path.parent not in checked:
            # File names are safe_name()s (no "/" or ".."): checking each folder, links
            # followed, and refusing to write through a link checks every file.
            _inside(path.parent, base)
            path.parent.mkdir(parents=True, exist_ok=True)
            checked.add(path.parent)
        if rel in existing:
            if path.is_symlink():
                path.unlink()  # replaced by the file, never written through
            elif path.read_bytes() == data:
                result.unchanged += 1
                continue
        path.write_bytes(data)
        result.written += 1
    legacy = [p for p in indexes if p.name == LEGACY_INDEX]
    removed, folders = _remove_ours(out, base, earlier - wanted.keys())
    for path in legacy:
        path.unlink()
    result.removed += removed
    _remove_empty_folders(folders, out)
    return result


def _existing_files(out: Path, folder: str) -> set[str]:
    """Return the files (relative to ``out``) in ``out/folder``, and the index files."""
    files = {p.name for p in out.glob(f"*{INDEX_SUFFIX}")}
    root = out / folder
    if not root.is_dir():
        return files
    for dirpath, _, filenames in os.walk(root):
        rel = Path(os.path.relpath(dirpath, out)).as_posix()
        files.update(f"{rel}/{f}" for f in filenames)
    return files


def remove_stale_clusters(out: Path, clusters: list[str]) -> int:
    """Remove what an earlier render wrote for clusters the fleet no longer has; files
    specc did not write stay, and so do their folders."""
    if not out.is_dir():
        return 0
    base = out.resolve()
    keep = {safe_name(c) for c in clusters}
    stale: set[str] = set()
    for path in out.glob(f"*{INDEX_SUFFIX}"):
        stale.add(path.name.removesuffix(INDEX_SUFFIX))
    for path in out.glob(f"*/{LEGACY_INDEX}"):
        stale.add(path.parent.name)
    removed = 0
    for cluster in sorted(stale - keep):
        earlier, indexes = _earlier_files(out, cluster)
        n, folders = _remove_ours(out, base, earlier)
        removed += n
        for path in indexes:
            path.unlink()
            folders.add(path.parent)
        _remove_empty_folders(folders | {out / cluster}, out)
    return removed

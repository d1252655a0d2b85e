"""Load stage: fleet files → plain documents that remember where every value came from.

PyYAML's C composer keeps a mark on every node, so positions come at the speed of
libyaml (about 2.5× ruamel.yaml's safe loader and 20× its round-trip loader, see
shared/MEASURED.md). We build plain Python values from the node tree ourselves, which
is also where duplicate keys, alias bombs and oversized input are refused.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from specc.errors import Finding, LoadError, Position

try:  # the C composer when libyaml is present, the pure one otherwise
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the wheel
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

#: A file larger than this is refused before it is parsed.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Nodes one document may expand to (aliases counted at every use): stops YAML bombs.
MAX_NODES = 200_000
#: Nesting deeper than this is refused (no real spec comes close).
MAX_DEPTH = 64
#: Documents one file may hold; findings one file may report before the rest are counted.
MAX_DOCUMENTS = 2_000
MAX_FINDINGS = 100
#: Texts that might nest deeper than this get an exact depth scan before libyaml composes
#: them: its composer recurses in C and crashes the process at about 25,000 levels, and
#: libyaml 0.2.6 (PyYAML 6.0.4's wheels) refuses 1,000 levels with its own message.
_COMPOSE_SAFE_DEPTH = 500

FieldPath = tuple[str | int, ...]

_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


@dataclass
class SourceMap:
    """Positions of a document's keys and values, by field path."""

    path: str
    values: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[FieldPath, tuple[int, int]] = field(default_factory=dict)
    #: For quoted and multi-line scalars: (offset in the value, line, column) where each
    #: source line's text starts, so that a problem inside a value (a PromQL expression,
    #: a template) is located at its own line. Plain one-line scalars need none.
    scalars: dict[FieldPath, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)
    #: Plain scalars read as numbers or booleans whose text is not that value's canonical
    #: spelling (``1.10``, ``012345``, ``True``): string fields keep the text as written.
    texts: dict[FieldPath, str] = field(default_factory=dict)

    def value(self, loc: FieldPath) -> Position:
        """Return the position of the value at ``loc``, or of its nearest ancestor."""
        return self._lookup(self.values, loc)

    def within(self, loc: FieldPath, offset: int) -> Position:
        """Return the position of the character at ``offset`` in the string value at ``loc``."""
        segments = self.scalars.get(loc)
        if not segments:
            start = self.value(loc)
            if start.line and loc in self.values:
                return Position(self.path, start.line, start.column + offset)
            return start
        hit = segments[0]
        for segment in segments:
            if segment[0] > offset:
                break
            hit = segment
        value_offset, line, column = hit
        return Position(self.path, line, column + max(offset - value_offset, 0))

    def key(self, loc: FieldPath) -> Position:
        """Return the position of the key that names ``loc`` (its value if no key)."""
        if loc in self.keys:
            line, col = self.keys[loc]
            return Position(self.path, line, col)
        return self.value(loc)

    def _lookup(self, table: dict[FieldPath, tuple[int, int]], loc: FieldPath) -> Position:
        for n in range(len(loc), -1, -1):
            hit = table.get(loc[:n])
            if hit is not None:
                return Position(self.path, *hit)
        return Position(self.path)

    def sub(self, prefix: FieldPath) -> SourceMap:
        """Return the map of the subtree at ``prefix``, with paths relative to it."""
        n = len(prefix)
        out = SourceMap(self.path)
        out.values = {k[n:]: v for k, v in self.values.items() if k[:n] == prefix}
        out.keys = {k[n:]: v for k, v in self.keys.items() if k[:n] == prefix and len(k) > n}
        out.scalars = {k[n:]: v for k, v in self.scalars.items() if k[:n] == prefix}
        out.texts = {k[n:]: v for k, v in self.texts.items() if k[:n] == prefix}
        return out


@dataclass
class Document:
    """One YAML document of a fleet file."""

    path: str  # relative to the fleet root, with forward slashes
    index: int  # position of the document in its file, from 0
    data: Any
    source: SourceMap

    @property
    def position(self) -> Position:
        return self.source.value(())

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", "")) if isinstance(self.data, dict) else ""


@dataclass
class Fleet:
    """The raw documents of a fleet repository, grouped by where they were found."""

    root: Path
    fleet: list[Document]
    teams: list[Document]
    apps: list[Document]
    crds: list[Document]
    #: Problems found while loading; validation reports them with its own.
    findings: list[Finding] = field(default_factory=list)

    @property
    def documents(self) -> list[Document]:
        return [*self.fleet, *self.teams, *self.apps, *self.crds]


class _Builder:
    """Turns a composed node tree into plain values plus a :class:`SourceMap`."""

    def __init__(self, source: SourceMap, lines: list[str] | None = None) -> None:
        self.source = source
        self.lines = lines or []
        self.findings: list[Finding] = []
        self.count = 0
        self._constructor = yaml.constructor.SafeConstructor()

    def pos(self, node: yaml.Node) -> Position:
        return Position(self.source.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: yaml.Node, loc: FieldPath, depth: int = 0) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _Refused(
                self.pos(node),
                f"document expands to more than {MAX_NODES} nodes "
                "(aliases of aliases: a YAML bomb?)",
            )
        if depth > MAX_DEPTH:
            raise _Refused(self.pos(node), f"nesting deeper than {MAX_DEPTH} levels")
        mark = node.start_mark
        self.source.values[loc] = (mark.line + 1, mark.column + 1)
        if isinstance(node, yaml.ScalarNode):  # the common case first
            value = self._scalar(node)
            if isinstance(value, str):
                if node.style or node.end_mark.line != mark.line:
                    self.source.scalars[loc] = self._segments(node, value)
            elif value is not None and node.value != _canonical(value):
                self.source.texts[loc] = node.value
            return value
        if node.tag not in _COLLECTION_TAGS:
            # A tag on a collection (`!!python/object/apply`, `!Ref`, `!!omap`) would
            # otherwise be dropped silently and the collection read as a plain one.
            raise _Refused(self.pos(node), f"unsupported YAML tag {node.tag!r}")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc, depth)
        assert isinstance(node, yaml.SequenceNode)
        build, depth = self.build, depth + 1
        return [build(item, (*loc, i), depth) for i, item in enumerate(node.value)]

    def _mapping(self, node: yaml.MappingNode, loc: FieldPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        keys, build, depth = self.source.keys, self.build, depth + 1
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused(self.pos(key_node), "merge keys (<<) are not supported")
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(self.pos(key_node), "mapping keys must be plain scalars")
            # Kubernetes keys are strings: keep what was written (`on`, `80`, `yes`).
            key = str(key_node.value)
            path = (*loc, key)
            if path in keys:
                self.findings.append(
                    Finding(
                        self.pos(key_node),
                        f"duplicate key {key!r} (first defined at line {keys[path][0]})",
                    )
                )
                continue
            mark = key_node.start_mark
            keys[path] = (mark.line + 1, mark.column + 1)
            out[key] = build(value_node, path, depth)
        return out

    def _segments(self, node: yaml.ScalarNode, value: str) -> tuple[tuple[int, int, int], ...]:
        """Return where each source line of a quoted or multi-line scalar starts in its value.

        Folding and escapes change the text, so each line's stripped text is looked up
        in the value in order; a line not found (an escape) keeps the previous mapping.
        """
        start, end = node.start_mark, node.end_mark
        quoted = node.style in ("'", '"')
        out: list[tuple[int, int, int]] = []
        found = 0
        first = start.line + (1 if node.style in ("|", ">") else 0)
        for number in range(first, min(end.line, len(self.lines) - 1) + 1):
            raw = self.lines[number]
            begin = start.column + (1 if quoted else 0) if number == start.line else 0
            stop = end.column - (1 if quoted else 0) if number == end.line else len(raw)
            text = raw[begin:stop]
            stripped = text.lstrip(" \t")
            begin += len(text) - len(stripped)
            stripped = stripped.rstrip(" \t\r")
            if not stripped:
                continue
            at = value.find(stripped, found)
            if at < 0:
                continue
            out.append((at, number + 1, begin + 1))
            found = at + len(stripped)
        return tuple(out)

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        c = self._constructor
        if tag == "tag:yaml.org,2002:str":
            return node.value
        if not node.style and tag in _CORE_RESOLVED:
            return _core_scalar(node.value)
        if tag == "tag:yaml.org,2002:int":
            return c.construct_yaml_int(node)
        if tag == "tag:yaml.org,2002:float":
            return c.construct_yaml_float(node)
        if tag == "tag:yaml.org,2002:bool":
            return c.construct_yaml_bool(node)
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"):
            # Kubernetes has no date type, and YAML 1.2 has no "value" type (YAML 1.1
            # resolves a bare `=` to it): keep what was written.
            return node.value
        raise _Refused(self.pos(node), f"unsupported YAML tag {tag!r}")


#: Tags PyYAML's YAML 1.1 resolver gives plain scalars; specc resolves those again with
#: the YAML 1.2 core schema, so `NO`, `off`, `y`, `12:30:00`, `0b1`, `1_000` stay text.
_CORE_RESOLVED = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float", "null", "timestamp", "value")
)
_CORE_INT = re.compile(r"[-+]?[0-9]+")
_CORE_OCT = re.compile(r"0o[0-7]+")
_CORE_HEX = re.compile(r"0x[0-9a-fA-F]+")
_CORE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_CORE_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")
_CORE_NAN = re.compile(r"\.(nan|NaN|NAN)")


def _core_scalar(text: str) -> Any:
    """Return a plain scalar as the YAML 1.2 core schema reads it (yaml.org/spec/1.2.2, 10.3.2)."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _CORE_INT.fullmatch(text):
        return int(text, 10)
    if _CORE_OCT.fullmatch(text):
        return int(text[2:], 8)
    if _CORE_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _CORE_FLOAT.fullmatch(text):
        return float(text)
    if _CORE_INF.fullmatch(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _CORE_NAN.fullmatch(text):
        return float("nan")
    return text


def _canonical(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Refused(Exception):
    def __init__(self, position: Position, message: str) -> None:
        self.finding = Finding(position, message)


def _nesting_bound(text: str) -> int:
    """Return an upper bound of the nesting depth of ``text``, cheaply.

    Flow collections each need a bracket; nested block collections each start at a
    greater column than their parent, except a sequence under a mapping key, which may
    share the key's column. So depth <= brackets + 2 * (longest line + 1).
    """
    longest = max((len(line) for line in text.splitlines()), default=0)
    return text.count("[") + text.count("{") + 2 * (longest + 1)


def _too_deep(text: str, path: str) -> Finding | None:
    """Return a finding if ``text`` nests deeper than MAX_DEPTH, from parser events only.

    Event parsers keep their own stack, so unlike the composer they cannot overflow.
    libyaml's is fast but, from 0.2.6 (PyYAML 6.0.4's wheels), refuses 1,000 levels
    with its own message before yielding an event; when it raises, the pure-Python
    parser, which has no limit of its own and yields events as it goes, reads the text
    again up to that point, so that specc's limit fires, at the collection that
    passes it, whatever the libyaml build.
    """
    try:
        return _scan_depth(_Loader(text), path)
    except yaml.YAMLError:
        pass
    try:
        return _scan_depth(yaml.SafeLoader(text), path)
    except yaml.YAMLError:
        return None  # reported with its position by the real parse


def _scan_depth(loader: Any, path: str) -> Finding | None:
    depth = 0
    try:
        while True:
            event = loader.get_event()
            if event is None:
                return None
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                # The root collection is at depth 0 in the builder's count.
                if depth > MAX_DEPTH + 1:
                    mark = event.start_mark
                    line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
                    return Finding(
                        Position(path, line, col), f"nesting deeper than {MAX_DEPTH} levels"
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def parse_text(text: str, path: str) -> tuple[list[Document], list[Finding]]:
    """Return the documents of one YAML text and the problems found in it."""
    docs: list[Document] = []
    findings: list[Finding] = []
    if _nesting_bound(text) > _COMPOSE_SAFE_DEPTH:
        deep = _too_deep(text, path)
        if deep is not None:
            return [], [deep]
    loader = _Loader(text)
    lines: list[str] | None = None
    try:
        index = 0
        while loader.check_node():
            if index >= MAX_DOCUMENTS or len(findings) >= MAX_FINDINGS:
                findings.append(_stopped(path, loader, index, len(findings)))
                break
            node = loader.get_node()
            if node is None:
                break
            source = SourceMap(path)
            if lines is None:
                lines = text.split("\n")
            builder = _Builder(source, lines)
            try:
                data = builder.build(node, ())
            except _Refused as refused:
                findings.append(refused.finding)
                index += 1
                continue
            findings.extend(builder.findings)
            if data is not None:
                docs.append(Document(path, index, data, source))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "invalid YAML"
        findings.append(Finding(Position(path, line, col), f"invalid YAML: {problem}"))
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (a control character): located by its offset.
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character or "\0")
        findings.append(
            Finding(
                Position(path, line, col),
                f"invalid YAML: character U+{char:04X} is not allowed ({exc.reason})",
            )
        )
    except yaml.YAMLError as exc:
        findings.append(Finding(Position(path), f"invalid YAML: {exc}"))
    finally:
        loader.dispose()
    if len(findings) > MAX_FINDINGS:
        more = len(findings) - MAX_FINDINGS
        last = findings[MAX_FINDINGS - 1].position
        findings = findings[:MAX_FINDINGS]
        findings.append(Finding(last, f"and {more} more problems in this file, not shown"))
    return docs, findings


def _stopped(path: str, loader: Any, documents: int, found: int) -> Finding:
    """Return the finding that says why reading a file stopped early, where it stopped."""
    mark = loader.peek_event().start_mark
    where = Position(path, mark.line + 1, mark.column + 1)
    if documents >= MAX_DOCUMENTS:
        return Finding(
            where, f"more than {MAX_DOCUMENTS} documents in one file; the rest is not read"
        )
    return Finding(where, f"{found} problems found; the rest of the file is not read")


def read_text(root: Path, file: Path, real_root: Path | None = None) -> str:
    """Return a fleet file's text, refusing what leaves the root, is too big or not UTF-8.

    ``real_root`` is ``root.resolve()``, for callers that read many files.
    """
    rel = relpath(root, file)
    try:
        resolved = _resolve(file)
    except ValueError as exc:
        raise LoadError([Finding(Position(rel), str(exc))]) from None
    if not resolved.is_relative_to(real_root or root.resolve()):
        raise LoadError([Finding(Position(rel), "file leaves the fleet root (symlink?)")])
    try:
        st = resolved.stat()
    except OSError as exc:
        raise LoadError([Finding(Position(rel), f"cannot read: {exc.strerror}")]) from exc
    if not stat.S_ISREG(st.st_mode):
        raise LoadError([Finding(Position(rel), "not a regular file")])
    size = st.st_size
    if size > MAX_FILE_BYTES:
        raise LoadError(
            [Finding(Position(rel), f"file is {size} bytes, over the {MAX_FILE_BYTES} limit")]
        )
    raw = resolved.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise LoadError([Finding(Position(rel, line, col), "file is not valid UTF-8")]) from exc


def resolve_reference(root: Path, base: str, ref: str) -> Path:
    """Return the file a spec refers to, relative to the referring file's folder.

    Raises ``ValueError`` with the reason when the reference leaves the fleet root.
    """
    if os.path.isabs(ref):
        raise ValueError("must be a path relative to the spec file, not absolute")
    candidate = Path(os.path.normpath((root / base).parent / ref))
    real_root = root.resolve()
    if not _resolve(candidate).is_relative_to(real_root):
        raise ValueError(f"{ref!r} leaves the fleet root")
    return candidate


def _resolve(path: Path) -> Path:
    """Return ``path`` with symlinks resolved; raise ``ValueError`` on a symlink loop.

    Python 3.11 raises RuntimeError for a loop, later versions OSError (ELOOP).
    """
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        raise ValueError(f"{relpath(path.parent, path)!r} is a symlink loop") from exc


def relpath(root: Path, file: Path) -> str:
    try:
        return file.relative_to(root).as_posix()
    except ValueError:
        return file.as_posix()


def _yaml_files(root: Path, folder: str, findings: list[Finding]) -> Iterator[Path]:
    """Yield the YAML files under ``root/folder``, sorted; symlinked folders are not entered.

    A symlinked folder that leaves the root is reported; one that stays inside is
    skipped silently, since its files are found through their real path (and a link to
    an ancestor would loop).
    """
    base = root / folder
    if not base.is_dir():
        return
    real_root = root.resolve()
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base):
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                dirnames.remove(d)
                try:
                    inside = _resolve(here / d).is_relative_to(real_root)
                except ValueError:
                    inside = False
                if not inside:
                    findings.append(
                        Finding(
                            Position(relpath(root, here / d)),
                            "folder leaves the fleet root (symlink); it is not read",
                        )
                    )
        found.extend(here / f for f in filenames if f.endswith((".yaml", ".yml")))
    yield from sorted(found)  # read_text refuses what is not a regular file


def load_fleet(root: Path) -> Fleet:
    """Return every document of the fleet at ``root`` that could be read, with the problems.

    A file that cannot be read safely contributes findings instead of documents, so one
    run reports the problems of every file. Raises :class:`LoadError` only when there is
    no fleet to speak of.
    """
    if not root.is_dir():
        raise LoadError([Finding(Position(str(root)), "fleet directory does not exist")])
    fleet_file = root / "fleet.yaml"
    if not fleet_file.is_file():
        raise LoadError([Finding(Position(relpath(root, fleet_file)), "fleet.yaml is missing")])
    findings: list[Finding] = []
    groups: dict[str, list[Document]] = {"fleet": [], "teams": [], "apps": [], "crds": []}
    files: list[tuple[str, Path]] = [("fleet", fleet_file)]
    for folder in ("teams", "apps", "crds"):
        files.extend((folder, p) for p in _yaml_files(root, folder, findings))
    real_root = root.resolve()
    for group, file in files:
        rel = relpath(root, file)
        try:
            text = read_text(root, file, real_root)
        except LoadError as exc:
            findings.extend(exc.findings)
            continue
        docs, problems = parse_text(text, rel)
        groups[group].extend(docs)
        findings.extend(problems)
    return Fleet(root, groups["fleet"], groups["teams"], groups["apps"], groups["crds"], findings)

"""The one exception tree of specc.

Every error says first what it concerns: a source position (``path:line:col``) or a
Kubernetes object (``Kind/namespace/name``). The CLI catches :class:`SpeccError`
once and maps it to an exit code; nothing below the CLI prints or exits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Position:
    """A place in a fleet file: path relative to the fleet root, 1-based line and column."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.path
        return f"{self.path}:{self.line}:{self.column}"


def object_ref(kind: str, namespace: str | None, name: str) -> str:
    """Return the ``Kind/namespace/name`` form that every object error starts with."""
    if namespace:
        return f"{kind}/{namespace}/{name}"
    return f"{kind}/{name}"


class SpeccError(Exception):
    """Base of every error specc raises on purpose."""

    exit_code = 1


class UsageError(SpeccError):
    """The command line asked for something that cannot be done (exit 2)."""

    exit_code = 2


#: Longest finding message kept whole; longer ones keep their head and tail.
MAX_MESSAGE = 1_000


def did_you_mean(word: str, options: Iterable[str], cutoff: float = 0.6) -> str:
    """Return `` (did you mean 'x'?)`` for the option closest to ``word``, else ""."""
    import difflib  # only for a finding: a start that finds nothing never loads it

    close = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def abbreviate(text: str, limit: int) -> str:
    """Return ``text`` cut to about ``limit`` characters, keeping its head and tail."""
    if len(text) <= limit:
        return text
    keep = max((limit - 30) // 2, 1)
    return f"{text[:keep]}…({len(text) - 2 * keep} characters)…{text[-keep:]}"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in the fleet, located at a source position."""

    position: Position
    message: str
    field_path: str = ""
    # Objects rendered from the spec name themselves too (``Kind/ns/name``).
    subject: str = ""
    severity: Severity = "error"

    def __post_init__(self) -> None:
        # Messages quote the values they refuse; a multi-megabyte value must not make a
        # multi-megabyte error (a CI log, a PR comment, the parent's lastError).
        for name, limit in (("message", MAX_MESSAGE), ("field_path", 300), ("subject", 300)):
            text = getattr(self, name)
            if len(text) > limit:
                object.__setattr__(self, name, abbreviate(text, limit))

    def __str__(self) -> str:
        return f"{self.position}: {self.text}"

    @property
    def text(self) -> str:
        """Return the finding without its position: ``[Kind/ns/name: ][field: ]message``."""
        parts = [p for p in (self.subject, self.field_path) if p]
        return ": ".join([*parts, self.message])

    def format(self, path: str | None = None) -> str:
        """Return ``path:line:col: error: text``, the line compilers print and editors,
        CI problem matchers and ``grep -n`` users parse; ``path`` replaces the fleet-relative
        one (the CLI passes the path as the user would open it)."""
        where = replace(self.position, path=path) if path else self.position
        return f"{where}: {self.severity}: {self.text}"

    def to_dict(self, path: str | None = None) -> dict[str, object]:
        return {
            "file": path or self.position.path,
            "line": self.position.line,
            "column": self.position.column,
            "severity": self.severity,
            "field": self.field_path,
            "object": self.subject,
            "message": self.message,
        }


@dataclass
class FleetError(SpeccError):
    """The fleet failed to load, validate, compile or check; carries every finding."""

    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.findings = sorted(_per_file_cap(self.findings))
        super().__init__(self.summary())

    def summary(self) -> str:
        n = len(self.findings)
        head = f"{n} error{'s' if n != 1 else ''} in fleet"
        return head + "".join(f"\n{f}" for f in self.findings)

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> FleetError:
        return cls(list(findings))


#: Findings one file may report; the rest are counted in one more finding.
MAX_FILE_FINDINGS = 200


def _per_file_cap(findings: list[Finding]) -> list[Finding]:
    """Return the first MAX_FILE_FINDINGS ``findings`` of each file, plus a count.

    A generated file with thousands of broken documents must not make a log of
    thousands of lines; the first two hundred found (the loader's come first) say what
    is wrong.
    """
    out: list[Finding] = []
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.position.path] = counts.get(f.position.path, 0) + 1
        if counts[f.position.path] <= MAX_FILE_FINDINGS:
            out.append(f)
    for path, n in counts.items():
        if n > MAX_FILE_FINDINGS:
            more = n - MAX_FILE_FINDINGS
            out.append(Finding(Position(path), f"and {more} more problems in this file, not shown"))
    return out


class LoadError(FleetError):
    """A fleet file could not be read or parsed safely."""


class ValidationError(FleetError):
    """A spec does not satisfy its type or a cross-document rule."""


class CompileError(FleetError):
    """Specs were valid but could not be turned into objects."""


class CheckError(FleetError):
    """A rendered object is not valid against its Kubernetes or CRD schema."""


class ClusterError(SpeccError):
    """Talking to a cluster failed: connection, credentials, or an answer the command needs (exit 2)."""

    exit_code = 2


class IdentityError(ClusterError):
    """The server holds another cluster or fleet than the one named; nothing was written (exit 2)."""


class ObjectError(SpeccError):
    """An operation on one Kubernetes object failed."""

    def __init__(self, ref: str, message: str) -> None:
        self.ref = ref
        self.message = message
        super().__init__(f"{ref}: {message}")


class NotFoundError(SpeccError):
    """What the command was asked about does not exist (exit 1, like ``kubectl get``)."""


class WriteError(SpeccError):
    """Rendered output could not be written safely (a path would leave the output folder)."""


class GitError(SpeccError):
    """A git operation failed (unknown revision, not a repository, ...)."""

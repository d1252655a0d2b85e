"""Fault injection and request accounting for the API server double.

A :class:`FaultRule` matches requests by method and path pattern (``fnmatch`` style,
e.g. ``PATCH /apis/apps/v1/*``) and injects, with a given probability and at most a
given number of times: an error status (429 and 503 carry ``Retry-After: 1`` unless the
rule names another value, any status carries the one it names), added latency,
or a dropped connection. ``kill_after_writes(n)`` makes the server stop answering
(every connection dropped) once ``n`` writes have succeeded, until :meth:`Faults.revive`.
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import Counter
from dataclasses import dataclass, field

_MESSAGES = {
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    500: ("InternalError", "Internal error occurred: injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted"),
}


@dataclass
class FaultRule:
    """One injected fault for requests matching ``method`` and ``path`` patterns."""

    path: str = "*"
    method: str = "*"
    status: int | None = None
    rate: float = 1.0
    latency: float = 0.0
    drop: bool = False
    #: The Retry-After header, sent as written (``-1`` and ``soon`` test clients); None:
    #: ``1`` on 429 and 503, nothing on other statuses.
    retry_after: int | str | None = None
    times: int | None = None
    #: Only WATCH requests, whose status comes as an ERROR event in a 200 stream, as
    #: kube-apiserver reports a failure once a watch has begun (a conversion webhook down).
    in_stream: bool = False
    fired: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Return whether the rule applies to this request."""
        return fnmatch.fnmatchcase(method.upper(), self.method.upper()) and fnmatch.fnmatchcase(
            path, self.path
        )

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """Return a rule from CLI text: ``[METHOD ]PATH:key=value,…``.

        Keys: ``code`` (status), ``rate``, ``latency`` (seconds), ``drop``,
        ``retry-after`` (seconds), ``times``. Example: ``PATCH /apis/*:code=503,rate=0.2``.
        """
        target, _, options = text.rpartition(":") if ":" in text else (text, "", "")
        method, _, path = target.strip().rpartition(" ")
        rule = cls(path=path or "*", method=method or "*")
        for option in filter(None, (o.strip() for o in options.split(","))):
            key, _, value = option.partition("=")
            if key == "code":
                rule.status = int(value)
            elif key == "rate":
                rule.rate = float(value)
            elif key == "latency":
                rule.latency = float(value)
            elif key == "drop":
                rule.drop = value.lower() in ("", "1", "true", "yes")
            elif key == "retry-after":
                rule.retry_after = int(value) if value.lstrip("-").isdigit() else value
            elif key == "times":
                rule.times = int(value)
            else:
                raise ValueError(f"unknown fault option {key!r} in {text!r}")
        return rule


@dataclass
class Decision:
    """What to do with one request: delay, then answer normally, fail, or drop."""

    latency: float = 0.0
    status: int | None = None
    drop: bool = False
    retry_after: int | str | None = None
    in_stream: bool = False

    def error(self) -> tuple[str, str]:
        """Return (reason, message) of the injected status."""
        return _MESSAGES.get(self.status or 500, ("InternalError", "injected fault"))

    def retry_after_header(self) -> str | None:
        """Return the Retry-After header to send with the injected status, if any."""
        if self.retry_after is not None:
            return str(self.retry_after)
        return "1" if self.status in (429, 503) else None


@dataclass
class Faults:
    """The fault configuration of one server; safe to change while it serves."""

    rules: list[FaultRule] = field(default_factory=list)
    seed: int | None = None
    _kill_after: int | None = None
    _writes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _random: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._random.seed(self.seed)

    def add(
        self,
        path: str = "*",
        method: str = "*",
        *,
        status: int | None = None,
        rate: float = 1.0,
        latency: float = 0.0,
        drop: bool = False,
        retry_after: int | str | None = None,
        times: int | None = None,
        in_stream: bool = False,
    ) -> FaultRule:
        """Add a rule and return it (its ``fired`` count shows how often it hit)."""
        rule = FaultRule(path, method, status, rate, latency, drop, retry_after, times, in_stream)
        with self._lock:
            self.rules.append(rule)
        return rule

    def reseed(self, seed: int) -> None:
        """Make the random fault draws repeatable from here on."""
        with self._lock:
            self.seed = seed
            self._random.seed(seed)

    def kill_after_writes(self, writes: int) -> None:
        """Stop answering anything once ``writes`` more writes have succeeded."""
        with self._lock:
            self._kill_after = writes
            self._writes = 0

    def revive(self) -> None:
        """Undo :meth:`kill_after_writes`."""
        with self._lock:
            self._kill_after = None

    @property
    def dead(self) -> bool:
        """Return whether the kill switch has tripped."""
        with self._lock:
            return self._kill_after is not None and self._writes >= self._kill_after

    def count_write(self) -> None:
        """Record one successful write (for the kill switch)."""
        with self._lock:
            self._writes += 1

    def clear(self) -> None:
        """Remove every rule and the kill switch."""
        with self._lock:
            self.rules.clear()
            self._kill_after = None
            self._writes = 0

    def decide(self, method: str, path: str, watch: bool = False) -> Decision:
        """Return what to inject for one request (``watch``: a WATCH, which alone
        ``in_stream`` rules match)."""
        decision = Decision()
        if self.dead:
            decision.drop = True
            return decision
        with self._lock:
            for rule in self.rules:
                if not rule.matches(method, path) or (rule.in_stream and not watch):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if self._random.random() >= rule.rate:
                    continue
                rule.fired += 1
                decision.latency += rule.latency
                if rule.drop:
                    decision.drop = True
                if rule.status is not None and decision.status is None:
                    decision.status = rule.status
                    decision.retry_after = rule.retry_after
                    decision.in_stream = rule.in_stream
        return decision


@dataclass(frozen=True)
class RequestRecord:
    """One served request, as the request log keeps it."""

    method: str
    path: str
    query: dict[str, str]
    verb: str
    resource: str
    namespace: str
    name: str
    status: int
    content_type: str
    field_manager: str
    user_agent: str
    duration: float


_WRITE_VERBS = ("create", "update", "patch", "apply", "delete", "deletecollection")


class RequestLog:
    """Every request served, with counters by (verb, resource)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: list[RequestRecord] = []
        self.counters: Counter[tuple[str, str]] = Counter()

    def add(self, record: RequestRecord) -> None:
        """Record one request."""
        with self._lock:
            self.records.append(record)
            self.counters[(record.verb, record.resource)] += 1

    def count(self, verb: str | None = None, resource: str | None = None) -> int:
        """Return how many requests had this verb and/or resource (``None`` = any)."""
        with self._lock:
            return sum(
                n
                for (v, r), n in self.counters.items()
                if (verb is None or v == verb) and (resource is None or r == resource)
            )

    def writes(self) -> int:
        """Return how many mutating requests were served: dry-runs and failures included."""
        return sum(self.count(verb) for verb in _WRITE_VERBS)

    def persisted_writes(self) -> int:
        """Return how many mutating requests changed stored state (what the kill switch counts)."""
        with self._lock:
            return sum(
                1
                for r in self.records
                if r.verb in _WRITE_VERBS and r.status < 300 and "dryRun" not in r.query
            )

    def clear(self) -> None:
        """Forget every record and counter."""
        with self._lock:
            self.records.clear()
            self.counters.clear()

"""Cluster access over the official ``kubernetes`` client: discovery, list, apply, delete.

Requests go through ``ApiClient.call_api`` with raw JSON (no model classes), so one
client serves every kind, built-in or custom. Only what can succeed when sent again is
retried (:func:`retry_wait`): 429, 503, 504, timeouts and dropped connections, and any
other 5xx only when the server hints at a retry; with exponential backoff that honours a
valid Retry-After.
"""

from __future__ import annotations

import builtins
import email.utils
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from specc.errors import ClusterError, ObjectError
from specc.objects import FIELD_MANAGER, ObjectKey, group_of

#: Throttled, unavailable, timed out: the same request can succeed later. A 500 is not
#: among them: it is usually deterministic (a full ClusterIP range, a webhook that always
#: fails), and a server that means "try again" says so (ServerTimeout, Retry-After).
RETRYABLE = frozenset({429, 503, 504})


@dataclass(frozen=True)
class ClusterOptions:
    """How to reach a cluster and how hard to try."""

    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    #: Seconds one request may wait for its answer once the server has answered before.
    timeout: float = 60.0
    #: Seconds to open a connection; also the wait for the very first answer, so that a
    #: server that accepts connections and never answers fails fast instead of hanging.
    connect_timeout: float = 10.0
    #: Seconds one request may spend in retries in all (attempts and pauses); until the
    #: server has answered once, connection failures are retried for connect_timeout only.
    retry_budget: float = 60.0
    retries: int = 8
    backoff: float = 0.2
    max_backoff: float = 10.0
    concurrency: int = 8


@dataclass(frozen=True)
class Resource:
    """What discovery says about a kind: where to find it and whether it is namespaced."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name, safe='')}"
        return base


class ApiError(ClusterError):
    """A request failed with an HTTP status; carries the server's Status body."""

    def __init__(self, status: int, body: dict[str, Any], what: str) -> None:
        self.status = status
        self.body = body
        self.reason = str(body.get("reason", ""))
        message = str(body.get("message") or f"HTTP {status}")
        if status == 401:
            message = f"401 Unauthorized: the server does not accept these credentials ({message})"
        elif status == 403:
            message = f"403 Forbidden: {message}"
        super().__init__(f"{what}: {message}")

    @property
    def causes(self) -> list[dict[str, Any]]:
        details = self.body.get("details") or {}
        return list(details.get("causes") or [])


@dataclass
class Stats:
    """Requests made, by verb, and retries: what benchmarks and reports count."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    #: Called after each attempt with (verb, code, seconds): code is the HTTP status, or
    #: "error" when no answer came. The agent's metrics listen here.
    observers: list[Callable[[str, str, float], None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def answered(self, verb: str, code: int | str, seconds: float) -> None:
        for observe in self.observers:
            observe(verb, str(code or "error"), seconds)

    def count(self, verb: str) -> None:
        with self._lock:
            self.requests[verb] += 1

    def retried(self) -> None:
        with self._lock:
            self.retries += 1

    @property
    def writes(self) -> int:
        return sum(
            n for v, n in self.requests.items() if v in ("create", "apply", "update", "delete")
        )


class Cluster:
    """One cluster, reached through a ``kubernetes.client.ApiClient``."""

    def __init__(
        self,
        api_client: Any,
        options: ClusterOptions | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api_client
        _without_transport_retries(api_client)
        self.options = options or ClusterOptions()
        self.stats = Stats()
        self._sleep = sleep
        self._resources: dict[tuple[str, str], Resource] = {}
        self._groups: dict[str, str] | None = None
        self._discovered: set[str] = set()
        self._lock = threading.Lock()
        #: Whether the server has answered any request yet (see ClusterOptions.connect_timeout).
        self._answered = False
        #: Set when the process is stopping (SIGTERM): retry pauses end at once and the
        #: request fails instead of waiting out its retry budget.
        self._stop: threading.Event | None = None
        #: Told of each retry ("PATCH …: 503, retry 2 in 1.3 s"): the CLI's progress.
        self.on_retry: Callable[[str], None] | None = None
        self._watch_client: Any = None

    def stop_on(self, event: threading.Event) -> None:
        """Give up retrying (between attempts) as soon as ``event`` is set."""
        self._stop = event

    @property
    def server(self) -> str:
        """Return the server URL requests go to."""
        return str(getattr(getattr(self.api, "configuration", None), "host", "") or "")

    @classmethod
    def connect(cls, options: ClusterOptions) -> Cluster:
        """Return a cluster from kubeconfig (``--kubeconfig``/``--context``/KUBECONFIG) or in-cluster config."""
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            if options.in_cluster:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=options.kubeconfig,
                    context=options.context,
                    client_configuration=configuration,
                )
        except Exception as exc:  # the client raises several unrelated types here
            where = (
                "in-cluster config" if options.in_cluster else (options.kubeconfig or "kubeconfig")
            )
            raise ClusterError(f"{where}: cannot load cluster credentials: {exc}") from exc
        configuration.connection_pool_maxsize = max(options.concurrency, 4)
        # specc's own loop retries within a time budget; urllib3's hidden retries (3 by
        # default, each a full timeout, and Retry-After slept uncapped) would multiply
        # every wait by four.
        configuration.retries = False
        return cls(client.ApiClient(configuration), options)

    # -- requests -------------------------------------------------------------------

    def request(
        self,
        verb: str,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        what: str = "",
    ) -> dict[str, Any]:
        """Return the JSON answer of one API request, retrying transient failures."""
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json", "Content-Type": content_type}
        # The client serialises JSON and structured-YAML bodies itself; a str would be sent twice-encoded.
        payload = body
        delay = self.options.backoff
        what = what or f"{method} {path}"
        started = time.monotonic()
        for attempt in range(self.options.retries + 1):
            self.stats.count(verb)
            wait: float | None = None
            why = ""
            sent = time.monotonic()
            try:
                try:
                    status, data, resp_headers = self._send(
                        method, path, query or [], headers, payload, self._timeouts()
                    )
                except ApiException as exc:
                    self.stats.answered(verb, int(exc.status or 0), time.monotonic() - sent)
                    raise
                except Exception:
                    self.stats.answered(verb, "error", time.monotonic() - sent)
                    raise
                self.stats.answered(verb, status, time.monotonic() - sent)
                self._answered = True
                if 200 <= status < 300:
                    return json.loads(data) if data else {}
                parsed = _parse_status(data)
                retry, wait = retry_wait(status, resp_headers, parsed)
                if not retry or attempt == self.options.retries:
                    raise ApiError(status, parsed, what)
                why = f"HTTP {status}"
            except ApiError:
                raise
            except ApiException as exc:
                self._answered = True
                status = int(exc.status or 0)
                parsed = _parse_status(exc.body)
                retry, wait = retry_wait(status, exc.headers, parsed)
                if not retry or attempt == self.options.retries:
                    raise ApiError(status, parsed, what) from None
                why = f"HTTP {status}"
            except (OSError, ValueError) as exc:
                # urllib3's timeouts and dropped connections are OSError/ValueError kin.
                if attempt == self.options.retries:
                    raise ClusterError(f"{what}: {exc}") from None
                self._unreachable(exc, started, what)
                why = type(exc).__name__
            except Exception as exc:
                if type(exc).__module__.startswith("urllib3") and attempt < self.options.retries:
                    self._unreachable(exc, started, what)
                    why = type(exc).__name__
                else:
                    raise ClusterError(f"{what}: {exc}") from None
            self.stats.retried()
            pause = wait if wait is not None else delay * (0.5 + random.random())
            pause = min(pause, self.options.max_backoff)
            spent = time.monotonic() - started
            if spent + pause > self.options.retry_budget:
                raise ClusterError(
                    f"{what}: gave up after {attempt + 1} attempts in {spent:.0f} s "
                    f"(retry budget {self.options.retry_budget:g} s)"
                )
            if self.on_retry is not None:
                self.on_retry(f"{what}: {why}, retry {attempt + 1} in {pause:.1f} s")
            self._pause(pause, what)
            delay = min(delay * 2, self.options.max_backoff)
        raise ClusterError(f"{what}: gave up after {self.options.retries} retries")

    def _pause(self, seconds: float, what: str) -> None:
        stop = self._stop
        if stop is None:
            self._sleep(seconds)
            return
        if self._sleep is time.sleep:
            stopped = stop.wait(seconds)
        else:
            self._sleep(seconds)
            stopped = stop.is_set()
        if stopped:
            raise ClusterError(f"{what}: not retried, stopping")

    def _timeouts(self) -> tuple[float, float]:
        """Return (connect, read) timeouts: the first answer is awaited for connect_timeout only."""
        read = self.options.timeout
        if not self._answered:
            read = min(read, self.options.connect_timeout)
        return (self.options.connect_timeout, read)

    def _unreachable(self, exc: BaseException, started: float, what: str) -> None:
        """Raise if a server that never answered has had its connect_timeout; else return."""
        if self._answered:
            return
        spent = time.monotonic() - started
        if spent < self.options.connect_timeout:
            return
        server = self.server or "the server"
        reason = _reason(exc)
        if "timed out" in reason.lower():
            problem = f"no answer within {self.options.connect_timeout:g} s"
        else:
            problem = f"cannot connect for {self.options.connect_timeout:g} s"
        raise ClusterError(f"{server}: {problem} (--connect-timeout) to {what}: {reason}")

    def ping(self, timeout: float = 2.0) -> bool:
        """Send one GET /version, no retry; return whether the server answered at all.

        The answer is counted like any request (verb ``probe``): the agent's readiness
        asks this when no other request has told it lately whether the server is there.
        """
        sent = time.monotonic()
        try:
            status, _, _ = self._send(
                "GET", "/version", [], {"Accept": "application/json"}, None, (timeout, timeout)
            )
        except Exception:  # no answer of any kind: refused, reset, timed out, TLS
            self.stats.answered("probe", "error", time.monotonic() - sent)
            return False
        self.stats.answered("probe", status, time.monotonic() - sent)
        return bool(status)

    def _send(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        payload: str | None,
        timeout: tuple[float, float] | None = None,
    ) -> tuple[int, bytes, Any]:
        """Send one request; return status, raw body and headers without raising on status."""
        from kubernetes.client.exceptions import ApiException

        api = self.api
        timeout = timeout or (self.options.connect_timeout, self.options.timeout)
        if hasattr(api, "param_serialize"):  # kubernetes >= 35 (new generator)
            m, url, hdrs, body, _ = api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query,
                header_params=headers,
                body=payload,
                auth_settings=["BearerToken"],
            )
            resp = api.call_api(m, url, header_params=hdrs, body=body, _request_timeout=timeout)
            return int(resp.status), resp.read() or b"", resp.headers
        try:
            resp = api.call_api(
                path,
                method,
                query_params=query,
                header_params=headers,
                body=payload,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        except ApiException as exc:
            raw = exc.body.encode() if isinstance(exc.body, str) else (exc.body or b"")
            return int(exc.status or 0), raw, exc.headers
        return int(resp.status), resp.data or b"", resp.headers

    # -- discovery ------------------------------------------------------------------

    def _preferred_versions(self) -> dict[str, str]:
        if self._groups is None:
            groups = {"": "v1"}
            data = self.request("discovery", "GET", "/apis")
            for g in data.get("groups") or []:
                pv = (g.get("preferredVersion") or {}).get("version")
                if pv:
                    groups[g["name"]] = pv
            self._groups = groups
        return self._groups

    def _discover(self, group: str, version: str) -> None:
        gv = f"{group}/{version}" if group else version
        if gv in self._discovered:
            return
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            data = self.request("discovery", "GET", path)
        except ApiError as exc:
            if exc.status == 404:
                self._discovered.add(gv)
                return
            raise
        with self._lock:
            for r in data.get("resources") or []:
                if "/" in r.get("name", ""):
                    continue  # subresources
                res = Resource(group, version, r["kind"], r["name"], bool(r.get("namespaced")))
                # The first version seen for a kind wins; apiVersion lookups use their own.
                self._resources.setdefault((f"{group}/{version}", r["kind"]), res)
            self._discovered.add(gv)

    def forget(self, group: str) -> None:
        """Drop what discovery knew about ``group`` (after a CRD for it was applied)."""
        with self._lock:
            self._discovered = {gv for gv in self._discovered if not gv.startswith(f"{group}/")}
            self._resources = {k: v for k, v in self._resources.items() if v.group != group}
            self._groups = None

    def resource(self, api_version: str, kind: str) -> Resource | None:
        """Return the resource serving ``kind`` at ``api_version``, or None if unknown."""
        group = group_of(api_version)
        version = api_version.rpartition("/")[2]
        self._discover(group, version)
        return self._resources.get((f"{group}/{version}", kind))

    def resource_for(self, group: str, kind: str) -> Resource | None:
        """Return the preferred-version resource of a group-kind, or None if not served."""
        version = self._preferred_versions().get(group)
        if version is None:
            return None
        return self.resource(f"{group}/{version}" if group else version, kind)

    # -- verbs ----------------------------------------------------------------------

    def _require(self, body: dict[str, Any]) -> Resource:
        key = ObjectKey.of(body)
        res = self.resource(str(body.get("apiVersion", "")), key.kind)
        if res is None:
            raise ObjectError(
                str(key), f"the cluster does not serve {body.get('apiVersion')} {key.kind}"
            )
        return res

    def list(
        self,
        resource: Resource,
        label_selector: str,
        page: int = 500,
        namespace: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return every object of ``resource`` that matches ``label_selector`` ("" for all).

        In all namespaces, or in ``namespace`` only.
        """
        return self.list_at(resource, label_selector, page, namespace)[0]

    def list_at(
        self,
        resource: Resource,
        label_selector: str,
        page: int = 500,
        namespace: str | None = None,
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """Return what ``list`` returns and the resourceVersion of the list (to WATCH from).

        Every page of a paged LIST is read at the first page's resourceVersion.
        """
        items: builtins.list[dict[str, Any]] = []
        version = ""
        token = ""
        where = f" in namespace {namespace}" if namespace else ""
        while True:
            query = [("limit", str(page))]
            if label_selector:
                query.insert(0, ("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            data = self.request(
                "list",
                "GET",
                resource.path(namespace),
                query,
                what=f"list {resource.plural}{where}",
            )
            for item in data.get("items") or []:
                # Items in a list carry no apiVersion/kind; put them back for comparisons.
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            meta = data.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or ""
            if not token:
                return items, version

    def watch(
        self,
        resource: Resource,
        label_selector: str,
        resource_version: str,
        timeout_seconds: int,
        opened: Callable[[Any], None] = lambda _: None,
    ) -> Iterator[dict[str, Any]]:
        """Yield the events of one WATCH of ``resource`` from ``resource_version``, with bookmarks.

        Ends when the server ends the stream (after ``timeout_seconds``). ``opened`` gets
        the streaming response, so another thread can close it to end the watch at once.
        A status other than 200 raises ApiError (410 when the version is too old).
        Watches have a connection pool of their own: each holds its connection for
        minutes, and would otherwise starve the pool that syncs use.
        """
        from kubernetes.client.exceptions import ApiException
        from kubernetes.watch.watch import iter_resp_lines

        query = [
            ("watch", "true"),
            ("labelSelector", label_selector),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if not label_selector:
            query.pop(1)
        api = self._watch_api()
        headers = {"Accept": "application/json"}
        # No answer for longer than the server's own timeout means the connection is dead.
        timeout = (self.options.connect_timeout, timeout_seconds + 30.0)
        self.stats.count("watch")
        what = f"watch {resource.plural}"
        started = time.monotonic()
        try:
            if hasattr(api, "param_serialize"):
                m, url, hdrs, _body, _ = api.param_serialize(
                    method="GET",
                    resource_path=resource.path(),
                    query_params=query,
                    header_params=headers,
                    auth_settings=["BearerToken"],
                )
                resp = api.call_api(m, url, header_params=hdrs, _request_timeout=timeout).response
            else:
                resp = api.call_api(
                    resource.path(),
                    "GET",
                    query_params=query,
                    header_params=headers,
                    auth_settings=["BearerToken"],
                    _preload_content=False,
                    _return_http_data_only=True,
                    _request_timeout=timeout,
                )
        except ApiException as exc:
            self.stats.answered("watch", int(exc.status or 0), time.monotonic() - started)
            raise ApiError(int(exc.status or 0), _parse_status(exc.body), what) from None
        except Exception as exc:  # urllib3's connection errors, as in request()
            self.stats.answered("watch", "error", time.monotonic() - started)
            raise ClusterError(f"{what}: {_reason(exc)}") from None
        self.stats.answered("watch", int(resp.status), time.monotonic() - started)
        try:
            if int(resp.status) != 200:
                raise ApiError(int(resp.status), _parse_status(resp.data), what)
            opened(resp)
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if line:
                    yield json.loads(line)
        except (ApiError, ValueError):
            raise
        except Exception as exc:  # a dropped connection, a read timeout, a closed response
            raise ClusterError(f"{what}: {_reason(exc)}") from None
        finally:
            resp.release_conn()

    def _watch_api(self) -> Any:
        with self._lock:
            if self._watch_client is None:
                import copy

                from kubernetes import client

                configuration = copy.copy(self.api.configuration)
                configuration.connection_pool_maxsize = 64
                self._watch_client = client.ApiClient(configuration)
                _without_transport_retries(self._watch_client)
            return self._watch_client

    def get(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        res = self.resource(api_version, kind)
        if res is None:
            return None
        try:
            return self.request("get", "GET", res.path(namespace, name), what=f"get {kind}/{name}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def apply(
        self,
        body: dict[str, Any],
        *,
        force: bool,
        dry_run: bool = False,
        manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        """Server-side apply ``body``; return the object the server answers with."""
        res = self._require(body)
        meta = body["metadata"]
        query = [("fieldManager", manager)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        return self.request(
            "dry-run" if dry_run else "apply",
            "PATCH",
            res.path(meta.get("namespace"), meta["name"]),
            query,
            body,
            "application/apply-patch+yaml",
            what=str(ObjectKey.of(body)),
        )

    def delete(self, key: ObjectKey, api_version: str, propagation: str = "Background") -> bool:
        """Delete an object (``propagation``: Background, Foreground or Orphan, as
        DeleteOptions says); return False if it was already gone."""
        res = self.resource(api_version, key.kind)
        if res is None:
            return False
        try:
            self.request(
                "delete",
                "DELETE",
                res.path(key.namespace or None, key.name),
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": propagation,
                },
                what=str(key),
            )
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True


def _without_transport_retries(api_client: Any) -> None:
    """Turn off urllib3's own retries, so that :meth:`Cluster.request` alone decides.

    By default urllib3 resends a 429 or 503 carrying Retry-After up to three times,
    sleeping as long as the header says, unseen by specc's counters and uncapped: a
    ``Retry-After: 99999999`` would hold the agent for years.
    """
    pool = getattr(getattr(api_client, "rest_client", None), "pool_manager", None)
    kwargs = getattr(pool, "connection_pool_kw", None)
    if isinstance(kwargs, dict):
        kwargs["retries"] = False  # as connect() configures it


def _parse_status(raw: Any) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {"message": str(raw)[:500]}
    return data if isinstance(data, dict) else {"message": str(data)[:500]}


def _reason(exc: BaseException) -> str:
    """Return the innermost reason urllib3 gives for a failed connection, without its noise."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    # "HTTPConnectionPool(host=..., port=...): Read timed out. (read timeout=10)"
    return text.split("): ", 1)[-1] if "Pool(host=" in text else text


def retry_wait(status: int, headers: Any, body: dict[str, Any]) -> tuple[bool, float | None]:
    """Return whether a failed request is worth sending again, and the wait the server asked.

    429, 503 and 504 are retried; another 5xx only with a hint: a valid ``Retry-After``
    header or ``details.retryAfterSeconds`` (apimachinery's ``SuggestsClientDelay``, set
    for ServerTimeout). 4xx are final. The wait is None when the server named none (the
    caller backs off exponentially).
    """
    wait = parse_retry_after(headers.get("Retry-After") if hasattr(headers, "get") else None)
    if wait is None:
        seconds = (body.get("details") or {}).get("retryAfterSeconds")
        if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
            wait = float(seconds)
    if status in RETRYABLE:
        return True, wait
    return status >= 500 and wait is not None, wait


def parse_retry_after(value: Any, now: float | None = None) -> float | None:
    """Return the seconds a ``Retry-After`` value asks for, or None when it is not valid.

    RFC 9110 allows a number of whole seconds or an HTTP date; anything else (``-1``,
    ``1.5``, ``soon``) is ignored, as client-go ignores it, rather than trusted.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))

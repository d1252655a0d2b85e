"""A Kubernetes API server double over HTTP, for tests and offline fleet checks.

Run it alone::

    python -m specc.testing.apiserver --port 0 --kubeconfig /tmp/kubeconfig

or in-process::

    with ApiServer() as server:
        client = server.api_client()

It speaks HTTP/1.1 with keep-alive (the kubernetes client pools connections), reads
request bodies as JSON, YAML or Kubernetes protobuf (kubectl 1.32+ sends protobuf for
``kubectl create``), answers in JSON (which every kubectl asks for alongside protobuf),
and routes every request through fault injection and the request log.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from specc.testing import discovery
from specc.testing import status as st
from specc.testing.api import Cluster, Request, Response, Target
from specc.testing.faults import Faults, RequestLog, RequestRecord
from specc.testing.resources import ResourceType

DEFAULT_VERSION = "v1.33.4"
_DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
_DISCOVERY_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
_SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class Router:
    """Maps requests to discovery documents and to :class:`Cluster` verbs."""

    def __init__(self, cluster: Cluster, address: str) -> None:
        self.cluster = cluster
        self.address = address

    def route(self, request: Request) -> tuple[Response, str, str, str, str]:
        """Return the response and (verb, resource, namespace, name) for the request log."""
        parts = [p for p in request.path.split("/") if p]
        try:
            if parts[:1] == ["api"] or parts[:1] == ["apis"]:
                return self._api(request, parts)
            if parts == ["version"]:
                return (
                    Response(200, discovery.version_info(self.cluster.version)),
                    "get",
                    "version",
                    "",
                    "",
                )
            if parts == ["openapi", "v2"]:
                body = discovery.openapi_v2_protobuf(
                    self.cluster.resource_types(), self.cluster.version
                )
                kind = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
                return Response(200, None, kind, raw=body), "get", "openapi", "", ""
            if parts[:2] == ["openapi", "v3"]:
                return self._openapi(parts[2:]), "get", "openapi", "", ""
            if parts in (["healthz"], ["readyz"], ["livez"]):
                return Response(200, None, "text/plain", raw=b"ok"), "get", parts[0], "", ""
            raise st.ApiError(
                404, "the server could not find the requested resource", "NotFound", {}
            )
        except st.ApiError as exc:
            return Response(exc.code, exc.status(), headers=exc.headers), "error", "", "", ""

    def _openapi(self, rest: list[str]) -> Response:
        index, documents = discovery.openapi_root(self.cluster.resource_types())
        if not rest:
            return Response(200, index, "text/plain; charset=utf-8")
        body = documents.get("/".join(rest))
        if body is None:
            raise st.ApiError(
                404, "the server could not find the requested resource", "NotFound", {}
            )
        return Response(200, None, "application/json", raw=body)

    def _discovery(self, request: Request, parts: list[str]) -> Response | None:
        resources = self.cluster.resource_types()
        accept = request.accept.replace(" ", "")
        if parts in (["api"], ["apis"]):
            for wanted, version in ((_DISCOVERY_V2, "v2"), (_DISCOVERY_V2BETA1, "v2beta1")):
                if wanted in accept.split(","):
                    body = discovery.aggregated(resources, parts == ["api"], version)
                    return Response(200, body, wanted)
            if parts == ["api"]:
                return Response(200, discovery.api_versions(self.address))
            return Response(200, discovery.api_group_list(resources))
        if parts[0] == "api" and len(parts) == 2:
            return self._or_404(discovery.resource_list(resources, "", parts[1]))
        if parts[0] == "apis" and len(parts) == 2:
            return self._or_404(discovery.api_group(resources, parts[1]))
        if parts[0] == "apis" and len(parts) == 3:
            return self._or_404(discovery.resource_list(resources, parts[1], parts[2]))
        return None

    def _or_404(self, body: dict[str, Any] | None) -> Response:
        if body is None:
            raise st.ApiError(
                404, "the server could not find the requested resource", "NotFound", {}
            )
        return Response(200, body)

    def _api(self, request: Request, parts: list[str]) -> tuple[Response, str, str, str, str]:
        found = self._discovery(request, parts)
        if found is not None:
            return found, "get", "discovery", "", ""
        if parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        else:
            group, version, rest = parts[1], parts[2], parts[3:]
        namespace = ""
        if rest[:1] == ["namespaces"] and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        rt = self.cluster.lookup(group, version, plural)
        if rt is None or len(rest) > 3 or (namespace and not rt.namespaced):
            raise st.ApiError(
                404, "the server could not find the requested resource", "NotFound", {}
            )
        if sub and sub not in {s.name for s in rt.subresources}:
            raise st.ApiError(
                404, "the server could not find the requested resource", "NotFound", {}
            )
        verb = self._verb(request, name)
        resource = f"{plural}/{sub}" if sub else plural
        response = self._verb_call(request, rt, namespace, name, sub, verb)
        return response, verb, resource, namespace, name

    def _verb(self, request: Request, name: str) -> str:
        method = request.method
        if method == "GET":
            if request.query.get("watch") in ("1", "true"):
                return "watch"
            return "get" if name else "list"
        if method == "PATCH":
            return "apply" if request.content_type == "application/apply-patch+yaml" else "patch"
        if method == "DELETE":
            return "delete" if name else "deletecollection"
        return {"POST": "create", "PUT": "update"}.get(method, method.lower())

    def _verb_call(
        self, request: Request, rt: ResourceType, namespace: str, name: str, sub: str, verb: str
    ) -> Response:
        cluster = self.cluster
        target = Target(rt, namespace, name, sub)
        if sub == "scale":
            return self._scale(request, target, verb)
        if verb == "get":
            return self._maybe_table(request, rt, cluster.get(target), single=True)
        if verb == "list":
            listing = cluster.list_objects(
                rt, namespace if rt.namespaced and namespace else None, request.query
            )
            return self._maybe_table(request, rt, listing, single=False)
        if verb == "watch":
            return Response(200, {"watch": (rt, namespace or None)})
        if verb == "create":
            if rt.namespaced and not namespace:
                raise st.ApiError(
                    404, "the server could not find the requested resource", "NotFound", {}
                )
            return cluster.create(target, request)
        if verb == "update":
            return cluster.replace(target, request)
        if verb in ("patch", "apply"):
            return cluster.patch(target, request)
        if verb == "delete":
            return cluster.delete(target, request)
        if verb == "deletecollection":
            return cluster.delete_collection(rt, namespace or None, request)
        raise st.method_not_allowed(request.method)

    def _scale(self, request: Request, target: Target, verb: str) -> Response:
        cluster = self.cluster
        if verb in ("update", "patch"):
            if verb == "update":
                # client-go's UpdateScale sends the Scale as protobuf from kubectl 1.32 on.
                body = cluster.parse_object(request, "autoscaling", "v1", "Scale")
            else:
                body = json.loads(request.body or b"{}")
            if verb == "patch":
                current = self._scale_object(
                    cluster.get(Target(target.rt, target.namespace, target.name, ""))
                )
                from specc.testing.patch import json_patch, merge_patch

                if request.content_type == "application/json-patch+json":
                    body = json_patch(current, body)
                else:
                    body = merge_patch(current, body)
            # Scale.spec.replicas is a plain int32: absent or null is 0, as in Go.
            replicas = (body.get("spec") or {}).get("replicas") or 0
            inner = Request(
                "PATCH",
                request.path,
                dict(request.query),
                {**request.headers, "content-type": "application/merge-patch+json"},
                json.dumps({"spec": {"replicas": replicas}}).encode(),
            )
            # The parent object changes; its managedFields entry names the subresource.
            response = cluster.patch(target, inner)
            return Response(response.status, self._scale_object(response.body))
        return Response(
            200,
            self._scale_object(cluster.get(Target(target.rt, target.namespace, target.name, ""))),
        )

    def _scale_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        replicas = (obj.get("spec") or {}).get("replicas", 0)
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            # omitempty on a plain int32: a Scale of 0 replicas has an empty spec.
            "spec": {"replicas": replicas} if replicas else {},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    def _maybe_table(
        self, request: Request, rt: ResourceType, body: dict[str, Any], single: bool
    ) -> Response:
        if "as=Table" not in request.accept:
            return Response(200, body)
        objects = [body] if single else body["items"]
        include = request.query.get("includeObject", "Metadata")
        rows = []
        for obj in objects:
            meta = obj.get("metadata") or {}
            row: dict[str, Any] = {
                "cells": [meta.get("name", ""), meta.get("creationTimestamp", "")]
            }
            if include == "Object":
                row["object"] = {"apiVersion": rt.group_version, "kind": rt.kind, **obj}
            elif include != "None":
                row["object"] = {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": {k: v for k, v in meta.items() if k != "managedFields"},
                }
            rows.append(row)
        table = {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {
                "resourceVersion": (body.get("metadata") or {}).get("resourceVersion", "")
            },
            "columnDefinitions": [
                {
                    "name": "Name",
                    "type": "string",
                    "format": "name",
                    "description": "Name must be unique within a namespace.",
                    "priority": 0,
                },
                {
                    "name": "Created At",
                    "type": "date",
                    "format": "",
                    "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
                    "priority": 0,
                },
            ],
            "rows": rows,
        }
        return Response(200, table, "application/json;as=Table;v=v1;g=meta.k8s.io")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small responses on keep-alive connections otherwise wait for delayed ACKs (~40 ms).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        # The request log replaces stderr noise.
        return

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        release = owner._serving()
        try:
            self._serve_one(owner, release)
        finally:
            release()

    def _serve_one(self, owner: ApiServer, release: Callable[[], None]) -> None:
        started = time.monotonic()
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, split.path, dict(parse_qsl(split.query)), headers, body)
        decision = owner.faults.decide(request.method, request.path, _watching(request))
        if decision.latency:
            time.sleep(decision.latency)
        if decision.drop:
            self.close_connection = True
            owner._record(request, "dropped", "", "", "", 0, started)
            return
        if decision.status is not None and decision.in_stream:
            reason, message = decision.error()
            owner._record(request, "fault", "", "", "", decision.status, started)
            self._stream_error(st.status_body(decision.status, message, reason))
            return
        if decision.status is not None:
            reason, message = decision.error()
            header = decision.retry_after_header()
            extra = {"Retry-After": header} if header is not None else {}
            # Like apimachinery's NewTooManyRequests: the Status repeats a valid delay.
            details = {"retryAfterSeconds": int(header)} if header and header.isdigit() else None
            response = Response(
                decision.status,
                st.status_body(decision.status, message, reason, details),
                headers=extra,
            )
            owner._record(request, "fault", "", "", "", decision.status, started)
            self._send(response)
            return
        response, verb, resource, namespace, name = owner.router.route(request)
        if isinstance(response.body, dict) and "watch" in response.body and len(response.body) == 1:
            owner._record(request, verb, resource, namespace, name, 200, started)
            rt, ns = response.body["watch"]
            release()  # a watch runs until it ends: not a request in flight
            self._watch(rt, ns, request)
            return
        written = verb in ("create", "update", "patch", "apply", "delete", "deletecollection")
        if response.status < 300 and written and request.query.get("dryRun") != "All":
            owner.faults.count_write()
        # Record before answering, so a client that reads the log next sees its request.
        owner._record(request, verb, resource, namespace, name, response.status, started)
        self._send(response)

    def _stream_error(self, status: dict[str, Any]) -> None:
        """Answer a WATCH with 200 and one ERROR event carrying ``status``, then end it."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = json.dumps({"type": "ERROR", "object": status}, separators=(",", ":")).encode()
        chunk += b"\n"
        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def _send(self, response: Response) -> None:
        payload = response.raw
        if payload is None:
            payload = json.dumps(response.body, separators=(",", ":"), ensure_ascii=False).encode()
        phrase = self.responses.get(response.status, ("",))[0]
        headers = {
            "Content-Type": response.content_type,
            "Content-Length": str(len(payload)),
            "Cache-Control": "no-cache, private",
            "Date": self.date_time_string(),
            **response.headers,
        }
        head = f"HTTP/1.1 {response.status} {phrase}\r\n" + "".join(
            f"{key}: {value}\r\n" for key, value in headers.items()
        )
        # One write for headers and body: fewer packets on the keep-alive connection.
        self.wfile.write(head.encode("latin-1") + b"\r\n" + payload)

    def _watch(self, rt: ResourceType, namespace: str | None, request: Request) -> None:
        """Stream WATCH events as the real server does: newline-delimited JSON, chunked.

        ``resourceVersion`` unset or ``0`` starts with an ADDED event per matching object;
        a newer one replays the event log after it, and one the log no longer reaches
        gets an ERROR event with a 410 ``Expired`` Status (the watch cache's "too old
        resource version"). ``allowWatchBookmarks`` adds a BOOKMARK with the current
        resourceVersion every ``ApiServer.bookmark_interval`` seconds; ``timeoutSeconds``
        ends the stream cleanly.
        """
        from specc.testing.selectors import parse_field_selector, parse_label_selector

        owner = self.server.owner
        cluster = owner.cluster
        labels = parse_label_selector(request.query.get("labelSelector", ""))
        fields = parse_field_selector(request.query.get("fieldSelector", ""))
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        bookmarks = request.query.get("allowWatchBookmarks") in ("1", "true")
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        store = cluster.store
        key = (rt.group, rt.plural)
        api_version = f"{rt.group}/{rt.version}" if rt.group else rt.version

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            if namespace is not None and meta.get("namespace") != namespace:
                return False
            return labels(meta.get("labels") or {}) and fields(obj)

        def emit(kind: str, obj: dict[str, Any]) -> None:
            chunk = (
                json.dumps({"type": kind, "object": obj}, separators=(",", ":")).encode() + b"\n"
            )
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()

        def bookmark(revision: int) -> None:
            emit(
                "BOOKMARK",
                {
                    "kind": rt.kind,
                    "apiVersion": api_version,
                    "metadata": {"resourceVersion": str(revision), "creationTimestamp": None},
                },
            )

        try:
            with store.lock:
                since = request.query.get("resourceVersion") or "0"
                revision = int(since) if since.isdigit() else 0
                gone = 0 < revision < store.compacted
                backlog: list[tuple[str, dict[str, Any]]] = []
                if gone:
                    pass
                elif revision == 0:
                    backlog = [("ADDED", o) for o in store.items(key, namespace) if matches(o)]
                else:
                    backlog = [
                        (e.type, e.obj) for e in store.events_after(revision, key) if matches(e.obj)
                    ]
                compacted = store.compacted
                revision = store.revision
            if gone:
                message = f"too old resource version: {since} ({compacted + 1})"
                emit("ERROR", st.status_body(410, message, "Expired"))
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True
                return
            for kind, obj in backlog:
                emit(kind, obj)
            next_bookmark = time.monotonic() + owner.bookmark_interval
            while time.monotonic() < deadline and not self.server.stopping:
                with store.lock:
                    wait = min(0.5, deadline - time.monotonic(), next_bookmark - time.monotonic())
                    if store.revision == revision and wait > 0:
                        store.changed.wait(timeout=wait)
                    fresh = [
                        (e.type, e.obj) for e in store.events_after(revision, key) if matches(e.obj)
                    ]
                    revision = store.revision
                for kind, obj in fresh:
                    emit(kind, obj)
                if bookmarks and time.monotonic() >= next_bookmark:
                    bookmark(revision)
                if time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + owner.bookmark_interval
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


def _watching(request: Request) -> bool:
    return request.method == "GET" and request.query.get("watch") in ("1", "true")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ApiServer
    stopping = False


class ApiServer:
    """A running API server double: URL, kubeconfig, clients, faults and request log.

    Use as a context manager or call :meth:`start` and :meth:`stop`. ``version`` is what
    ``/version`` reports (kubectl's dispatcher picks its minor version from it).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = DEFAULT_VERSION,
        kubeconfig_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.cluster = Cluster(version=version)
        self.faults = Faults()
        self.log = RequestLog()
        #: Seconds between BOOKMARK events on a watch that allows them (the real
        #: server's watch cache sends one about every minute).
        self.bookmark_interval = 60.0
        self._kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self._owned_kubeconfig = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.router = Router(self.cluster, f"{host}:{port}")
        #: Requests being served (watches once they stream), for :meth:`wait_idle`.
        self._in_flight = 0
        self._idle = threading.Condition()
        self._seed()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ApiServer:
        """Start serving in a background thread and write the kubeconfig; return self."""
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self.router.address = f"{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="specc-apiserver",
            daemon=True,
        )
        self._thread.start()
        if self._kubeconfig_path is None:
            handle, name = tempfile.mkstemp(prefix="specc-kubeconfig-", suffix=".yaml")
            os.close(handle)
            self._kubeconfig_path = Path(name)
            self._owned_kubeconfig = True
        self.write_kubeconfig(self._kubeconfig_path)
        return self

    def stop(self) -> None:
        """Stop serving and remove a kubeconfig the server created itself."""
        if self._httpd is not None:
            self._httpd.stopping = True
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._owned_kubeconfig and self._kubeconfig_path is not None:
            self._kubeconfig_path.unlink(missing_ok=True)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ access

    @property
    def url(self) -> str:
        """Return the base URL (``http://127.0.0.1:PORT``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        """Return the path of the kubeconfig that points at this server."""
        if self._kubeconfig_path is None:
            raise RuntimeError("the server has not been started")
        return self._kubeconfig_path

    @property
    def requests(self) -> list[RequestRecord]:
        """Return the request log (oldest first)."""
        return list(self.log.records)

    @property
    def counters(self) -> dict[tuple[str, str], int]:
        """Return request counts by (verb, resource); verbs as in apiserver metrics, ``apply`` separate."""
        return dict(self.log.counters)

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> None:
        """Write a kubeconfig with one cluster, user and context named ``specc-double``."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "specc-double", "cluster": {"server": self.url}}],
            "users": [{"name": "specc-double", "user": {"token": "specc-double"}}],
            "contexts": [
                {
                    "name": "specc-double",
                    "context": {
                        "cluster": "specc-double",
                        "user": "specc-double",
                        "namespace": "default",
                    },
                }
            ],
            "current-context": "specc-double",
        }
        Path(path).write_text(json.dumps(config, indent=2) + "\n")

    def api_client(self) -> Any:
        """Return a ``kubernetes.client.ApiClient`` configured for this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.api_key = {"authorization": "Bearer specc-double"}
        return client.ApiClient(configuration)

    def dynamic_client(self) -> Any:
        """Return a ``kubernetes.dynamic.DynamicClient`` for this server."""
        from kubernetes import dynamic

        factory: Any = dynamic.DynamicClient
        return factory(self.api_client())

    def reset(self) -> None:
        """Forget every object, fault and logged request (the default namespaces come back)."""
        with self.cluster.store.lock:
            self.cluster.store.clear()
            for key in [k for k, rt in self.cluster.resources.items() if rt.crd_schema is not None]:
                del self.cluster.resources[key]
        self.faults.clear()
        self.log.clear()
        self._seed()

    def _seed(self) -> None:
        for name in _SEED_NAMESPACES:
            body = json.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            ).encode()
            request = Request(
                "POST",
                "/api/v1/namespaces",
                {"fieldManager": "kube-apiserver"},
                {"content-type": "application/json"},
                body,
            )
            rt = self.cluster.lookup("", "v1", "namespaces")
            assert rt is not None
            self.cluster.create(Target(rt, "", name, ""), request)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being served (watches aside): a write held back by
        injected latency has landed, as it would on a real server, before a test goes on.
        Raise ``TimeoutError`` if that takes longer than ``timeout``."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError(f"{self._in_flight} requests still served after {timeout:g} s")

    def _serving(self) -> Callable[[], None]:
        """Count one request as in flight; return the call (safe to repeat) that ends it."""
        with self._idle:
            self._in_flight += 1
        done = False

        def release() -> None:
            nonlocal done
            with self._idle:
                if not done:
                    done = True
                    self._in_flight -= 1
                    self._idle.notify_all()

        return release

    def _record(
        self,
        request: Request,
        verb: str,
        resource: str,
        namespace: str,
        name: str,
        status: int,
        started: float,
    ) -> None:
        self.log.add(
            RequestRecord(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                verb=verb,
                resource=resource,
                namespace=namespace,
                name=name,
                status=status,
                content_type=request.content_type,
                field_manager=request.query.get("fieldManager", ""),
                user_agent=request.headers.get("user-agent", ""),
                duration=time.monotonic() - started,
            )
        )


def serve(**options: Any) -> ApiServer:
    """Return a started :class:`ApiServer` (use it in a ``with`` block to stop it)."""
    return ApiServer(**options).start()


def main(argv: list[str] | None = None) -> int:
    """Run the double until interrupted; print its URL once it listens."""
    parser = argparse.ArgumentParser(
        prog="python -m specc.testing.apiserver", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--kubeconfig", required=True, help="where to write a kubeconfig for this server"
    )
    parser.add_argument(
        "--version", default=DEFAULT_VERSION, help="what /version reports (default %(default)s)"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="[METHOD ]PATH:key=value,...",
        help="inject a fault, e.g. 'PATCH /apis/apps/*:code=503,rate=0.2' (keys: code, rate, latency, drop, retry-after, times)",
    )
    parser.add_argument(
        "--kill-after-writes", type=int, default=None, help="stop answering after N writes"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed for fault rates")
    args = parser.parse_args(argv)
    from specc.errors import UsageError
    from specc.testing.faults import FaultRule

    server = ApiServer(args.host, args.port, args.version, args.kubeconfig)
    try:
        for text in args.fault:
            server.faults.rules.append(FaultRule.parse(text))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.seed is not None:
        server.faults._random.seed(args.seed)
    if args.kill_after_writes is not None:
        server.faults.kill_after_writes(args.kill_after_writes)
    server.start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

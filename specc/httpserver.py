"""A small HTTP server whose cost does not grow with what clients send or how slowly.

``http.server.ThreadingHTTPServer`` gives every connection a thread and waits on it for
ever: 400 idle connections pin 400 threads. Here one I/O thread holds every connection
until its request line and headers have arrived (a socket and at most
``max_header_bytes`` each, no thread; closed ``header_timeout`` after it was accepted,
the oldest first beyond ``max_connections``). Only a complete head goes to a worker:
GET and HEAD to ``workers`` threads of their own, requests with a body to
``body_workers``, so clients that send bodies slowly cannot keep /healthz from being
answered. Each request then has ``request_timeout`` seconds, after which its socket is
shut. Handlers derive from :class:`BoundedRequestHandler`; HTTP/1.0, one request per
connection.
"""

from __future__ import annotations

import contextlib
import errno
import io
import queue
import selectors
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

from specc.errors import UsageError


@dataclass(frozen=True)
class ServerLimits:
    """What one server may spend on its clients."""

    #: GET and HEAD requests handled at once (threads).
    workers: int = 4
    #: Requests with a body (POST...) handled at once (threads).
    body_workers: int = 4
    #: Connections whose request head has not fully arrived; beyond it the oldest is closed.
    max_connections: int = 512
    #: Seconds from accepting a connection to the end of its request line and headers.
    header_timeout: float = 10.0
    #: Seconds one request may take once its head is in, reading its body and answering.
    request_timeout: float = 15.0
    #: Requests waiting for a worker, per pool; beyond it: 503 at once.
    backlog: int = 32
    #: Bytes of request line and headers together.
    max_header_bytes: int = 16 * 1024


class RequestTooLarge(Exception):
    """A client sent more than the handler allowed it to read."""


class CappedReader(io.RawIOBase):
    """What the I/O thread read (``head``), then the socket, up to ``budget`` bytes.

    The head holds the request line and headers (and perhaps the start of a body); a
    handler sets ``budget`` before it reads a body of a checked length, so no client
    can make it read more than it allowed.
    """

    def __init__(self, sock: socket.socket, head: bytes, budget: int = 0) -> None:
        self._sock = sock
        self._head = memoryview(head)
        self.budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        if self.budget <= 0:
            raise RequestTooLarge
        n = self._sock.recv_into(view[: self.budget])
        self.budget -= n
        return n


class BoundedRequestHandler(BaseHTTPRequestHandler):
    """A handler reading the head the I/O thread collected, with the server's limits."""

    server_version = "specc"
    sys_version = ""

    def setup(self) -> None:
        server = cast("BoundedHTTPServer", self.server)
        self.connection = self.request
        self.connection.settimeout(server.limits.request_timeout)
        self.reader = CappedReader(self.connection, server.take_head(self.connection))
        self.rfile = io.BufferedReader(self.reader, 8192)
        self.wfile = self.connection.makefile("wb", 0)

    def handle(self) -> None:
        try:
            super().handle()
        except RequestTooLarge:  # read past what it was allowed: nothing sensible to answer
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        return


class BoundedHTTPServer:
    """Serve ``handler`` on ``host:port`` within :class:`ServerLimits`."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: type[BoundedRequestHandler],
        limits: ServerLimits | None = None,
    ) -> None:
        self.handler = handler
        self.limits = limits or ServerLimits()
        self.socket = _listen(host, port)
        self.server_address = self.socket.getsockname()[:2]
        #: BaseHTTPRequestHandler reads these from its server.
        self.server_name = str(host)
        self.server_port = int(self.server_address[1])
        self._stop = threading.Event()
        self._pools: dict[str, queue.Queue[tuple[socket.socket, Any] | None]] = {
            "plain": queue.Queue(self.limits.backlog),
            "body": queue.Queue(self.limits.backlog),
        }
        #: Connections whose head is still arriving: address, accepted at, bytes so far.
        self._idle: OrderedDict[socket.socket, tuple[Any, float, bytearray]] = OrderedDict()
        #: Heads read by the I/O thread, for the worker that takes the connection.
        self._heads: dict[socket.socket, bytes] = {}
        #: Connections a worker is serving, with the monotonic time their request must end.
        self._active: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.server_port

    def start(self) -> None:
        sizes = {"plain": self.limits.workers, "body": self.limits.body_workers}
        for pool, size in sizes.items():
            for i in range(size):
                t = threading.Thread(
                    target=self._worker, args=(pool,), name=f"specc-http-{pool}-{i}", daemon=True
                )
                t.start()
                self._threads.append(t)
        io_thread = threading.Thread(target=self._io, name="specc-http", daemon=True)
        io_thread.start()
        self._threads.append(io_thread)

    def stop(self) -> None:
        self._stop.set()
        sizes = {"plain": self.limits.workers, "body": self.limits.body_workers}
        for pool, size in sizes.items():
            for _ in range(size):
                with contextlib.suppress(queue.Full):
                    self._pools[pool].put_nowait(None)
        with self._lock:
            for conn in self._active:
                _shut(conn)
        # Daemon threads: a worker stuck on a client must not hold up a SIGTERM exit.
        deadline = time.monotonic() + 1.0
        for t in self._threads:
            t.join(timeout=max(deadline - time.monotonic(), 0))
        self.socket.close()

    def connections(self) -> tuple[int, int]:
        """Return (waiting for their head, in service) connection counts."""
        with self._lock:
            return len(self._idle), len(self._active)

    def take_head(self, conn: socket.socket) -> bytes:
        with self._lock:
            return self._heads.pop(conn, b"")

    # -- the I/O thread: accept, wait for a first byte, enforce deadlines ---------------

    def _io(self) -> None:
        sel = selectors.DefaultSelector()
        self.socket.setblocking(False)
        sel.register(self.socket, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                try:
                    for key, _ in sel.select(timeout=0.2):
                        if key.fileobj is self.socket:
                            self._accept(sel)
                        else:
                            self._receive(sel, key.fileobj)  # type: ignore[arg-type]
                    self._sweep(sel)
                except Exception:  # one client's odd failure must not end the server
                    time.sleep(0.01)
        finally:
            for conn in list(self._idle):
                self._drop(sel, conn)
            sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                conn, addr = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors: make room by closing the oldest silent client.
                    if self._idle:
                        self._drop(sel, next(iter(self._idle)))
                    return
                return
            conn.setblocking(False)
            with self._lock:
                self._idle[conn] = (addr, time.monotonic(), bytearray())
            sel.register(conn, selectors.EVENT_READ)
            while len(self._idle) > self.limits.max_connections:
                self._drop(sel, next(iter(self._idle)))

    def _receive(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        """Read what arrived; hand the connection to a worker once its head is complete."""
        addr, _, head = self._idle[conn]
        try:
            data = conn.recv(self.limits.max_header_bytes + 1 - len(head))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._drop(sel, conn)
            return
        start = max(len(head) - 3, 0)
        head += data
        if head.find(b"\r\n\r\n", start) < 0 and head.find(b"\n\n", start) < 0:
            if len(head) > self.limits.max_header_bytes:
                self._answer(sel, conn, b"431 Request Header Fields Too Large", b"head too large\n")
            return
        sel.unregister(conn)
        with self._lock:
            del self._idle[conn]
            self._heads[conn] = bytes(head)
        method = bytes(head[: head.find(b" ")])
        pool = "plain" if method in (b"GET", b"HEAD") else "body"
        try:
            self._pools[pool].put_nowait((conn, addr))
        except queue.Full:
            with self._lock:
                self._heads.pop(conn, None)
            self._answer(None, conn, b"503 Service Unavailable", b"busy\n")

    def _answer(
        self, sel: selectors.BaseSelector | None, conn: socket.socket, status: bytes, body: bytes
    ) -> None:
        """Send a short answer without blocking (best effort) and close."""
        with contextlib.suppress(OSError):
            conn.send(
                b"HTTP/1.0 "
                + status
                + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
                + body
            )
        if sel is not None:
            self._drop(sel, conn)
        else:
            conn.close()

    def _sweep(self, sel: selectors.BaseSelector) -> None:
        now = time.monotonic()
        while self._idle:
            conn, (_, since, _) = next(iter(self._idle.items()))
            if now - since < self.limits.header_timeout:
                break
            self._drop(sel, conn)
        with self._lock:
            for conn, deadline in self._active.items():
                if now >= deadline:
                    _shut(conn)  # wakes the worker blocked in recv or send

    def _drop(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(conn)
        with self._lock:
            self._idle.pop(conn, None)
        conn.close()

    # -- workers -------------------------------------------------------------------------

    def _worker(self, pool: str) -> None:
        while True:
            item = self._pools[pool].get()
            if item is None or self._stop.is_set():
                if item is not None:
                    item[0].close()
                return
            conn, addr = item
            conn.setblocking(True)
            with self._lock:
                self._active[conn] = time.monotonic() + self.limits.request_timeout
            try:
                self.handler(conn, addr, self)  # type: ignore[arg-type]
            except Exception:  # a client that vanished or overran: nothing left to answer
                pass
            finally:
                with self._lock:
                    self._active.pop(conn, None)
                    self._heads.pop(conn, None)
                _shut(conn)
                conn.close()


def _shut(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def _listen(host: str, port: int) -> socket.socket:
    """Return a listening socket on ``host:port``; a refusal is a UsageError (exit 2)."""
    where = f"--listen {host}:{port}" if ":" not in host else f"--listen [{host}]:{port}"
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError, OverflowError) as exc:
        raise UsageError(f"{where}: cannot listen: unknown address ({exc})") from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address, family=family, backlog=1024)
    except OverflowError as exc:
        raise UsageError(f"{where}: cannot listen: {exc}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EACCES:
            reason = "permission denied (ports below 1024 need privileges)"
        raise UsageError(f"{where}: cannot listen: {reason}") from None

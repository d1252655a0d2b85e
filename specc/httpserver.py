"""A small HTTP server whose cost does not grow with what clients send or how slowly.

``http.server.ThreadingHTTPServer`` gives every connection a thread and waits on it for
ever: 400 idle connections pin 400 threads. Here one I/O thread holds connections that
have sent nothing yet (a socket each, no thread, closed after ``idle_timeout``, oldest
first beyond ``max_connections``); only a connection with bytes to read goes to one of
``workers`` threads, and each request has ``request_timeout`` seconds in all, from its
first byte to its answer, after which its socket is shut. Request line and headers
together may hold ``max_header_bytes``. Handlers are ordinary
``BaseHTTPRequestHandler`` classes, HTTP/1.0: one request per connection.
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
from typing import Any

from specc.errors import UsageError


@dataclass(frozen=True)
class ServerLimits:
    """What one server may spend on its clients."""

    #: Requests handled at once (threads).
    workers: int = 8
    #: Open connections that have not sent a byte yet; beyond it the oldest is closed.
    max_connections: int = 512
    #: Seconds a connection may stay silent before its request starts.
    idle_timeout: float = 10.0
    #: Seconds one request may take in all, from its first byte to the end of its answer.
    request_timeout: float = 15.0
    #: Connections with a request waiting for a worker; beyond it: 503 at once.
    backlog: int = 64
    #: Bytes of request line and headers together.
    max_header_bytes: int = 64 * 1024


class RequestTooLarge(Exception):
    """A client sent more than the handler allowed it to read."""


class CappedReader(io.RawIOBase):
    """A socket reader that refuses to read more than ``budget`` bytes.

    The handler sets ``budget`` before each part it reads (headers, then a body of a
    checked length), so no client can make it buffer more than it allowed.
    """

    def __init__(self, sock: socket.socket, budget: int) -> None:
        self._sock = sock
        self.budget = budget

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.budget <= 0:
            raise RequestTooLarge
        view = memoryview(buffer)[: self.budget]
        n = self._sock.recv_into(view)
        self.budget -= n
        return n


class BoundedHTTPServer:
    """Serve ``handler`` on ``host:port`` within :class:`ServerLimits`."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: type[BaseHTTPRequestHandler],
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
        self._work: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue(self.limits.backlog)
        self._idle: OrderedDict[socket.socket, tuple[Any, float]] = OrderedDict()
        #: Connections a worker is serving, with the monotonic time their request must end.
        self._active: dict[socket.socket, float] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return self.server_port

    def start(self) -> None:
        for i in range(self.limits.workers):
            t = threading.Thread(target=self._worker, name=f"specc-http-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        io_thread = threading.Thread(target=self._io, name="specc-http", daemon=True)
        io_thread.start()
        self._threads.append(io_thread)

    def stop(self) -> None:
        self._stop.set()
        for _ in range(self.limits.workers):
            with contextlib.suppress(queue.Full):
                self._work.put(None, timeout=0.5)
        with self._lock:
            for conn in self._active:
                _shut(conn)
        for t in self._threads:
            t.join(timeout=2)
        self.socket.close()

    def connections(self) -> tuple[int, int]:
        """Return (idle, in service) connection counts."""
        with self._lock:
            return len(self._idle), len(self._active)

    # -- the I/O thread: accept, wait for a first byte, enforce deadlines ---------------

    def _io(self) -> None:
        sel = selectors.DefaultSelector()
        self.socket.setblocking(False)
        sel.register(self.socket, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.2):
                    if key.fileobj is self.socket:
                        self._accept(sel)
                    else:
                        self._dispatch(sel, key.fileobj)  # type: ignore[arg-type]
                self._sweep(sel)
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
                self._idle[conn] = (addr, time.monotonic())
            sel.register(conn, selectors.EVENT_READ)
            while len(self._idle) > self.limits.max_connections:
                self._drop(sel, next(iter(self._idle)))

    def _dispatch(self, sel: selectors.BaseSelector, conn: socket.socket) -> None:
        sel.unregister(conn)
        with self._lock:
            addr, _ = self._idle.pop(conn)
        try:
            self._work.put_nowait((conn, addr))
        except queue.Full:
            with contextlib.suppress(OSError):
                conn.send(
                    b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 5\r\n"
                    b"Connection: close\r\nRetry-After: 1\r\n\r\nbusy\n"
                )
            conn.close()

    def _sweep(self, sel: selectors.BaseSelector) -> None:
        now = time.monotonic()
        while self._idle:
            conn, (_, since) = next(iter(self._idle.items()))
            if now - since < self.limits.idle_timeout:
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

    def _worker(self) -> None:
        while True:
            item = self._work.get()
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

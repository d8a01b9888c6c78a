"""Cancelling requests in flight: a file's cancel flag cuts its connections and responses.

A thread blocked in a read (or waiting for an answer that never comes) cannot be told to stop,
so the flag shuts the socket under it; the read then fails and the thread sees the flag.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

import urllib3
import urllib3.connection


def interrupt(response: urllib3.BaseHTTPResponse | None) -> None:
    """Unblock a thread stuck reading response, from another thread (cancel must be prompt)."""
    if response is None:
        return
    shutdown = getattr(response, "shutdown", None)  # urllib3 >= 2.3
    if shutdown is not None:
        with contextlib.suppress(Exception):
            shutdown()
        return
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _cut(thing: object) -> None:
    """Interrupt a response or a connection from another thread."""
    if hasattr(thing, "release_conn"):  # a response (urllib3 1.26 has no BaseHTTPResponse)
        interrupt(thing)  # type: ignore[arg-type]
        return
    sock = getattr(thing, "sock", None)
    if sock is not None:
        # socket.socket's own shutdown even for TLS: SSLSocket.shutdown would drop its SSL
        # object under the feet of the thread that is reading from it.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class CancelFlag(threading.Event):
    """One file's cancel flag; setting it also cuts every request the file has in flight.

    Responses are added by whoever reads them; connections add themselves while a request
    made under `watching(flag)` waits for its answer (see WatchedPoolManager), which is how
    a cancel reaches a Hub that accepted the connection and never answers.
    """

    def __init__(self) -> None:
        super().__init__()
        self._live_lock = threading.Lock()
        self._live: set[object] = set()

    def set(self) -> None:
        super().set()
        with self._live_lock:
            live = list(self._live)
        for thing in live:
            _cut(thing)

    def add(self, thing: object) -> None:
        """Cut thing when the flag is set (at once if it already is)."""
        with self._live_lock:
            self._live.add(thing)
        if self.is_set():
            _cut(thing)

    def discard(self, thing: object) -> None:
        with self._live_lock:
            self._live.discard(thing)


_watch_state = threading.local()


@contextlib.contextmanager
def watching(flag: threading.Event) -> Iterator[None]:
    """Let flag cut the connections this thread's requests use until the block ends."""
    outer = getattr(_watch_state, "scope", None)
    noted: set[object] = set()
    _watch_state.scope = (flag, noted) if isinstance(flag, CancelFlag) else None
    try:
        yield
    finally:
        _watch_state.scope = outer
        if isinstance(flag, CancelFlag):
            for connection in noted:
                flag.discard(connection)


def _note(connection: object) -> None:
    scope = getattr(_watch_state, "scope", None)
    if scope is not None:
        flag, noted = scope
        noted.add(connection)
        flag.add(connection)


class _Watched:
    """Record the connection with the current `watching` flag when it connects or sends."""

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _note(self)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _note(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def watched_pool_manager(**pool_kw: Any) -> urllib3.PoolManager:
    """Return a PoolManager whose connections a CancelFlag can cut before any answer."""
    manager = urllib3.PoolManager(**pool_kw)
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager

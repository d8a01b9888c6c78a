"""The HTTP plumbing both servers share: keep-alive handler, replies, file streaming with faults."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import sys
import threading
import unicodedata
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qs, quote, urlsplit

from wandown.localhub.faults import Fault
from wandown.localhub.protocol import UNSATISFIABLE, parse_range

CHUNK_SIZE = 256 * 1024
TRICKLE_STEPS = 20  # a trickling body goes out in this many pieces a second
IDLE_TIMEOUT = 60.0  # seconds a kept-alive connection may sit idle
MAX_BODY = 1024 * 1024  # paths-info bodies are small; anything bigger is refused
MAX_CONNECTIONS = 256  # connections served at once; more get 503 (a slowloris holds no more)
BUSY_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Type: application/json\r\n"
    b"Content-Length: 50\r\nConnection: close\r\n\r\n"
    b'{"error": "Too many connections; try again later"}'
)


def header_value(value: object) -> str:
    """Make text safe as a header value: no control characters, nothing but ASCII.

    Control characters would end the header early (a CR LF in a request path would let the
    client add headers of its own); http.server encodes headers as strict latin-1 and raises on
    anything else. Non-ASCII characters are percent-encoded as UTF-8, the way RFC 8187 writes
    them, so "说明.txt" arrives as "%E8%AF%B4%E6%98%8E.txt".
    """
    text = "".join(c for c in str(value) if unicodedata.category(c) != "Cc")
    if text.isascii():
        return text
    return "".join(c if c.isascii() else percent_encoded(c) for c in text)


def percent_encoded(text: str) -> str:
    """Percent-encode text as UTF-8, leaving only letters, digits and "_.-~" as they are."""
    # backslashreplace: a lone surrogate (an undecodable file name byte) must not raise.
    return quote(text.encode("utf-8", "backslashreplace"), safe="")


def _describe(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def _log_line(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"localhub: {text}", file=sys.stderr, flush=True)


class Request(BaseHTTPRequestHandler):
    """One HTTP/1.1 connection; every answer carries Content-Length so keep-alive works."""

    protocol_version = "HTTP/1.1"
    server_version = "wandown-localhub"
    timeout = IDLE_TIMEOUT
    # Headers and body go out in separate writes; with Nagle's algorithm the second one would
    # wait for the client's delayed ACK (about 40 ms on Linux) on every kept-alive request.
    disable_nagle_algorithm = True
    server: Server

    # -- request side -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self.headers_sent = False
        self.raw_path, self.body = "", b""
        self.query: dict[str, list[str]] = {}
        try:
            self._answer()
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away mid-answer
        except OSError as err:
            self.close_connection = True  # a served file vanished or cannot be read
            if self._can_still_answer():
                self.reply_json(500, {"error": f"Cannot read a file: {err.strerror or err}"})
        except Exception as err:
            # A bug must not look like a network failure to the client, nor flood the console
            # of a server left running: log one line, then answer 500 if we still can. The line
            # goes first so that whoever reads the answer can already find it in the log.
            self.close_connection = True
            _log_line(f"internal error answering {self.command} {self.path!r}: {_describe(err)}")
            if self._can_still_answer():
                self.reply_json(500, {"error": "Internal error in localhub"})

    def _answer(self) -> None:
        target, _, query = self.path.partition("?")
        if not target.startswith("/"):
            # The absolute form (RFC 9112 section 3.2.2), as proxies send it. The origin form is
            # split by hand: urlsplit would read "//owner/..." as a host name.
            with contextlib.suppress(ValueError):  # e.g. "http://[::1/x", an unclosed IPv6 host
                target = urlsplit(self.path).path
        self.raw_path = target
        self.query = parse_qs(query, keep_blank_values=True)
        self.server.record(self)
        length = self.headers.get("Content-Length", "0").strip()
        # isdigit() alone lets through "²", which int() refuses.
        if not (length.isascii() and length.isdigit()) or int(length) > MAX_BODY:
            self.close_connection = True  # the unread body would poison the next request
            too_big = length.isascii() and length.isdigit()
            self.reply_json(413 if too_big else 400, {"error": "Unusable request body"})
            return
        self.body = self.rfile.read(int(length)) if int(length) else b""
        self.server.route(self)

    def _can_still_answer(self) -> bool:
        """Tell whether no header went out yet; then forget any that were only buffered."""
        if self.headers_sent:
            return False
        self._headers_buffer: list[bytes] = []  # http.server holds headers here till end_headers()
        return True

    def end_headers(self) -> None:
        """Send the buffered headers (and remember that they are gone)."""
        self.headers_sent = True
        super().end_headers()

    def send_header(self, keyword: str, value: str) -> None:
        """Add a header, its value made safe to send (see header_value)."""
        super().send_header(keyword, header_value(value))

    do_GET = do_HEAD = do_POST = _dispatch

    def version_string(self) -> str:
        """Name the server without advertising the Python version."""
        return self.server_version

    def query_value(self, name: str) -> str | None:
        """Return the last value of a query parameter."""
        values = self.query.get(name)
        return values[-1] if values else None

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: tests read ``LocalHub.requests`` instead of a log."""

    # -- answers ------------------------------------------------------------------------------

    def reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        """Send a complete answer (no body on HEAD, but the same Content-Length)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def reply_json(self, status: int, value: object, headers: dict[str, str] | None = None) -> None:
        """Send value as JSON."""
        body = json.dumps(value).encode()
        self.reply(
            status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body
        )

    def reply_error(
        self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Send an error the way the Hub does: X-Error-Code/X-Error-Message and {"error": ...}."""
        extra = {"X-Error-Message": message, **(headers or {})}
        if code:
            extra["X-Error-Code"] = code
        self.reply_json(status, {"error": message}, extra)

    def send_file(
        self,
        local: Path,
        size: int,
        headers: dict[str, str],
        fault: Fault | None,
        stopping: threading.Event,
        changed: Callable[[os.stat_result], str | None] | None = None,
    ) -> None:
        """Stream local (or the requested range of it), honouring Range and any body fault.

        Fault byte counts (drop_after, stall_after, short_body) count bytes of this body;
        corrupt_at is an offset in the file. `changed(stat of the opened file)` returns why it is
        not the file the headers describe (it changed on disk since): then a 503 says so.
        """
        fault = fault or Fault()
        wanted = None if fault.ignore_range else parse_range(self.headers.get("Range"), size)
        if fault.content_range is not None:
            first, last = wanted if isinstance(wanted, tuple) else (0, size - 1)
            value = fault.content_range.format(first=first, last=last, size=size, before=first - 1)
            self.reply(206, {**headers, "Content-Range": value})
            return
        if wanted == UNSATISFIABLE:
            self.reply(416, {**headers, "Content-Range": f"bytes */{size}"})
            return
        first, last = wanted if isinstance(wanted, tuple) else (0, size - 1)
        length = last - first + 1
        with open(local, "rb") as handle:  # opened first: a vanished file is a 500, not a cut
            problem = changed(os.fstat(handle.fileno())) if changed is not None else None
            if problem is not None:
                self.reply_error(503, None, problem, {"Retry-After": "1"})
                return
            self.send_response(206 if isinstance(wanted, tuple) else 200)
            for name, value in headers.items():
                self.send_header(name, value)
            if isinstance(wanted, tuple):
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if self.command != "HEAD" and length > 0:
                handle.seek(first)
                self._stream(handle, first, length, fault, stopping)

    def _stream(
        self, handle: BinaryIO, first: int, length: int, fault: Fault, stopping: threading.Event
    ) -> None:
        limit = length
        for cut in (fault.drop_after, fault.short_body):
            if cut is not None:
                limit = min(limit, cut)
        stall_at = fault.stall_after if fault.stall_seconds > 0 else None
        sent = 0
        while sent < limit and not stopping.is_set():
            step = min(CHUNK_SIZE, limit - sent)
            if stall_at is not None and sent < stall_at:
                step = min(step, stall_at - sent)
            if fault.trickle is not None:
                step = min(step, max(1, fault.trickle // TRICKLE_STEPS))
            chunk = handle.read(step)
            if not chunk:
                break  # the file shrank under us; the client will see a short body
            if fault.corrupt_at is not None:
                chunk = _flip(chunk, fault.corrupt_at - (first + sent))
            self.wfile.write(chunk)
            sent += len(chunk)
            if fault.trickle is not None:
                self.wfile.flush()
                stopping.wait(1 / TRICKLE_STEPS)
            if stall_at is not None and sent >= stall_at:
                stall_at = None
                stopping.wait(fault.stall_seconds)
        if sent < length:
            self._cut(reset=fault.drop_after is not None and sent == fault.drop_after)

    def _cut(self, *, reset: bool) -> None:
        """End the connection early: a TCP reset for a dropped link, else a clean close."""
        self.close_connection = True
        if reset:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN; rfile holds a
            # reference to the socket, so it has to go first for close() to take effect now.
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.rfile.close()
                self.connection.close()


def _flip(chunk: bytes, index: int) -> bytes:
    if 0 <= index < len(chunk):
        return chunk[:index] + bytes([chunk[index] ^ 0xFF]) + chunk[index + 1 :]
    return chunk


_Connection = socket.socket | tuple[bytes, socket.socket]
"""What socketserver hands a server per request (typeshed's type; TCP gives the socket)."""


class Server(ThreadingHTTPServer):
    """A threading HTTP server that can close its kept-alive connections when stopped."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        name: str,
        route: Callable[[Request], None],
        record: Callable[[str, Request], None],
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.name = name
        self._route = route
        self._record = record
        self._open: set[_Connection] = set()
        self._open_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Request)

    def route(self, request: Request) -> None:
        """Answer one request."""
        self._route(request)

    def record(self, request: Request) -> None:
        """Note one request for LocalHub.requests."""
        self._record(self.name, request)

    def process_request(self, request: _Connection, client_address: object) -> None:
        """Serve the connection in a thread of its own, or answer 503 when all slots are taken.

        The open connections are remembered so stop() can close them even while they idle in
        keep-alive.
        """
        if not self._slots.acquire(blocking=False):
            self._refuse_busy(request)
            return
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()  # no thread started: its slot is free again
            raise

    def process_request_thread(self, request: _Connection, client_address: object) -> None:
        """Serve one connection, then free its slot."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse_busy(self, request: _Connection) -> None:
        """Answer 503 with Retry-After on the accepting thread, without waiting on the client."""
        if isinstance(request, socket.socket):
            with contextlib.suppress(OSError):
                request.setblocking(False)  # a full send buffer must not stall accept()
                # What the client already sent is read first: closing with unread bytes would
                # send a reset, and the client might never see the 503.
                request.recv(MAX_BODY)
            with contextlib.suppress(OSError):
                request.send(BUSY_ANSWER)
        super().shutdown_request(request)

    def shutdown_request(self, request: _Connection) -> None:
        """Forget a finished connection."""
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection, so idle keep-alive handlers end at once."""
        with self._open_lock:
            open_now = list(self._open)
        for connection in open_now:
            if isinstance(connection, socket.socket):  # a TCP server's are; a UDP one's not
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        """Drop broken connections silently; log any other failure in one line, never a trace."""
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, OSError):
            _log_line(
                f"{self.name}: error on a connection from {client_address}: {_describe(error)}"
            )

"""A real nginx on loopback for the bench and the tests, its whole life in one work folder.

nginx runs as a non-daemon child of this process: its config, pid file, error log and every
temp path live in the work folder, so nothing outside it is read or written and several can
run at once. The caller gives the `http` block's servers; this module adds what every such
nginx needs, starts it, waits until it listens, and stops it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
START_SECONDS = 10.0


class NginxFailed(RuntimeError):
    """nginx exited or did not listen in time; the message carries its stderr."""


def find_tool(name: str) -> str | None:
    """Return the tool's path: on PATH, or in /usr/sbin or /usr/bin (off a user's PATH)."""
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )


def find_nginx() -> str | None:
    return find_tool("nginx")


def free_ports(count: int) -> list[int]:
    """Return count distinct free loopback ports (all held open while choosing)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def config_text(work: Path, http: str, workers: int, connections: int) -> str:
    """Return a whole nginx.conf: the top level, then `http` inside an http block."""
    temp_paths = "".join(f"    {name}_temp_path {work}/{name};\n" for name in TEMP_PATHS)
    # A master running as root starts its workers as nobody, who cannot read a private temp
    # folder of root's; nginx heeds `user` (and it is needed) only then.
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
worker_processes {workers};
daemon off;
{user}
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
{temp_paths}
{http}
}}
"""


class Nginx:
    """One nginx child: config written into work, started, listening on port once made."""

    def __init__(
        self,
        work: Path,
        http: str,
        port: int,
        *,
        workers: int = 1,
        connections: int = 256,
        binary: str | None = None,
    ) -> None:
        self.work = work
        self.port = port
        work.mkdir(parents=True, exist_ok=True)
        conf = work / "nginx.conf"
        conf.write_text(config_text(work, http, workers, connections))
        program = binary or find_nginx() or "nginx"
        self.process = subprocess.Popen(
            [program, "-c", str(conf), "-p", str(work), "-e", "stderr"],
            stderr=subprocess.PIPE,
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self._end(signal.SIGTERM)
                    detail = self.process.stderr.read() if self.process.stderr else b""
                    self.stop()
                    raise NginxFailed(f"nginx did not start: {detail!r}") from None
                time.sleep(0.05)

    def stop(self, graceful: bool = False) -> None:
        """Stop nginx: SIGTERM cuts every connection at once, SIGQUIT (graceful) lets them end."""
        self._end(signal.SIGQUIT if graceful else signal.SIGTERM)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def _end(self, how: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(how)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

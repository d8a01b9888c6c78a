"""A real nginx for tests: a caching proxy (proxy_cache) in front of a LocalHub, on loopback.

nginx runs as a non-daemon child with its whole config, cache and logs in a temp folder, like
bench/download.py starts it. Tests that need it skip with a reason where nginx is missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from wandown.localhub import LocalHub

VIA_PROXY = "x-via-proxy"  # the header nginx adds to what it asks the Hub: its requests, not ours


def find_nginx() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/bin/nginx") if os.path.exists(p)), None
    )


def needs_nginx() -> str:
    found = find_nginx()
    if found is None:
        pytest.skip("needs nginx (apt-get install nginx) for the caching proxy tests")
    return found


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


class CachingProxy:
    """nginx proxy_cache in front of a LocalHub's two ports (the Hub and its CDN).

    The Hub's redirects to its CDN are rewritten to the proxy's second port, so LFS bytes come
    through the cache too; the CDN's signed query string is not part of the cache key (the
    path holds the file's sha256), so a second client's fresh link is a cache hit.
    """

    def __init__(self, hub: LocalHub, work: Path, rate: str | None = None) -> None:
        self.port, self.cdn_port = free_ports(2)
        self.work = work
        self.rate = rate  # nginx limit_rate per connection ("2m"), so a test can cut it midway
        work.mkdir(parents=True, exist_ok=True)
        (work / "nginx.conf").write_text(self._config(hub))
        self.process = subprocess.Popen(
            [needs_nginx(), "-c", str(work / "nginx.conf"), "-p", str(work), "-e", "stderr"],
            stderr=subprocess.PIPE,
        )
        self._wait_until_listening()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self, hub: LocalHub) -> str:
        work = self.work
        temp_paths = "".join(
            f"    {name}_temp_path {work}/{name};\n"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;" if os.geteuid() == 0 else ""
        cached = f"""
            proxy_cache hub;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 30s;
            proxy_cache_valid 200 206 301 302 10m;
            proxy_ignore_headers Cache-Control Expires Set-Cookie;
            proxy_set_header {VIA_PROXY} 1;
            proxy_buffering on;
            {f"limit_rate {self.rate};" if self.rate else ""}
        """
        return f"""
worker_processes 1;
daemon off;
{user}
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp_paths}
    proxy_cache_path {work}/cache levels=1:2 keys_zone=hub:4m max_size=1g inactive=1h
        use_temp_path=off;
    server {{
        listen 127.0.0.1:{self.port};
        location / {{
            proxy_pass http://127.0.0.1:{hub.port};
            proxy_redirect http://127.0.0.1:{hub.cdn_port}/ http://127.0.0.1:{self.cdn_port}/;
            proxy_cache_key hub$request_uri;
            {cached}
        }}
    }}
    server {{
        listen 127.0.0.1:{self.cdn_port};
        location / {{
            proxy_pass http://127.0.0.1:{hub.cdn_port};
            proxy_cache_key cdn$uri;
            {cached}
        }}
    }}
}}
"""

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    detail = self.process.stderr.read() if self.process.stderr else b""
                    raise RuntimeError(f"nginx did not start: {detail!r}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop at once (SIGTERM: nginx's fast shutdown cuts every connection)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()

"""A real nginx for tests: a caching proxy (proxy_cache) in front of a LocalHub, on loopback.

nginx is started by bench/nginx.py, as the download bench starts it: a non-daemon child with
its whole config, cache and logs in a temp folder. Tests that need it skip with a reason where
nginx is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.nginx import Nginx, find_nginx, free_ports
from wandown.localhub import LocalHub

VIA_PROXY = "x-via-proxy"  # the header nginx adds to what it asks the Hub: its requests, not ours


def needs_nginx() -> str:
    found = find_nginx()
    if found is None:
        pytest.skip("needs nginx (apt-get install nginx) for the caching proxy tests")
    return found


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
        self.nginx = Nginx(work, self._servers(hub), self.port, binary=needs_nginx())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _servers(self, hub: LocalHub) -> str:
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
    proxy_cache_path {self.work}/cache levels=1:2 keys_zone=hub:4m max_size=1g inactive=1h
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
"""

    def stop(self) -> None:
        """Stop at once (SIGTERM: nginx's fast shutdown cuts every connection)."""
        self.nginx.stop()

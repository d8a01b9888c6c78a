"""bench/nginx.py, the one nginx start-up the tests and the download bench share."""

from __future__ import annotations

import socket
import urllib.request
from pathlib import Path

import pytest

from bench import download
from bench.nginx import Nginx, NginxFailed, free_ports
from tests.nginx import CachingProxy, needs_nginx


def serving(root: Path, port: int) -> str:
    return f"server {{ listen 127.0.0.1:{port}; root {root}; }}"


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return True
    return False


def test_it_listens_keeps_everything_in_its_folder_and_stops(tmp_path):
    needs_nginx()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "hello.txt").write_text("hello")
    (port,) = free_ports(1)
    nginx = Nginx(tmp_path / "work", serving(tmp_path / "site", port), port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/hello.txt", timeout=5) as answer:
            assert answer.read() == b"hello"
        assert (tmp_path / "work" / "nginx.pid").exists()
        assert (tmp_path / "work" / "proxy").is_dir()  # its temp paths are in its folder
    finally:
        nginx.stop()
    assert nginx.process.returncode is not None
    assert refuses(port)


def test_a_bad_config_fails_with_nginxs_own_words_and_leaves_nothing_running(tmp_path):
    needs_nginx()
    (port,) = free_ports(1)
    with pytest.raises(NginxFailed, match=r"nginx did not start: .*no_such_directive") as failed:
        Nginx(tmp_path / "work", "no_such_directive on;", port)
    assert "unknown directive" in str(failed.value)
    assert refuses(port)


def test_the_bench_says_why_nginx_did_not_start_in_one_line(tmp_path):
    needs_nginx()
    shape = download.Shape("broken", cap="not-a-rate")
    with pytest.raises(SystemExit) as stopped:
        download.Nginx(tmp_path / "serve", tmp_path / "work", shape, "0" * 64, 10)
    message = str(stopped.value)
    assert message.startswith("nginx did not start: ")
    assert '"limit_rate" directive invalid value' in message
    assert "\n" not in message


def test_a_caching_proxy_that_cannot_start_says_why(tmp_path, localhub):
    needs_nginx()
    with pytest.raises(RuntimeError, match=r"nginx did not start: .*limit_rate"):
        CachingProxy(localhub, tmp_path / "nginx", rate="fast")

"""Compare wandown's engine with curl, aria2c and huggingface_hub on one large file, on loopback.

    python bench/download.py                 # 2 GB file, unlimited and capped runs
    python bench/download.py --size 1G --cap 40m --connections 8

nginx (Debian package; installed with apt-get if missing) serves a generated file from a temp
folder on 127.0.0.1, once without limits and once with `limit_rate` capping every connection.
curl (one connection), aria2c (-x16 -s16) and wandown fetch it from nginx; huggingface_hub's
hf_hub_download fetches the same file through wandown.localhub, the Hub-compatible server (it
needs the Hub's protocol), next to wandown going through localhub too for a like-for-like row.
Every client runs as a child process, so its CPU seconds and peak RSS come from wait4().
Downloads go to --dest (default /dev/shm, so the disk is not what is measured).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REPO = "bench/model"
NAME = "model.safetensors"
BLOCK = 16 * 1024 * 1024


@dataclass
class Run:
    client: str
    seconds: float
    cpu: float
    rss_kb: int
    ok: bool
    note: str = ""
    files: int = 1


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def make_file(path: Path, size: int) -> str:
    """Write size pseudo-random bytes (a random block repeated) and return their sha256."""
    block = os.urandom(BLOCK)
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            piece = block[: min(left, BLOCK)]
            handle.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


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


def ensure_tools() -> None:
    tools = (("nginx", "nginx"), ("aria2c", "aria2"), ("curl", "curl"), ("time", "time"))
    missing = [pkg for tool, pkg in tools if not find(tool)]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def find(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.path.exists(p)), None
    )


class Nginx:
    """nginx on 127.0.0.1 with a temp config serving one folder, optionally capping connections."""

    def __init__(self, root: Path, work: Path, cap: str | None, sha256: str, size: int) -> None:
        self.port, self.cdn_port = free_ports(2)
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        limit = f"limit_rate {cap};" if cap else ""
        temp_paths = "".join(
            f"{name}_temp_path {work}/{name};\n"
            for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (work / "nginx.conf").write_text(
            f"""
worker_processes 2;
daemon off;
user root;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    {temp_paths}
    server {{
        listen 127.0.0.1:{self.port};
        listen 127.0.0.1:{self.cdn_port};
        root {root};
        location / {{ {limit} }}
        # The Hub's answer for an LFS file: a redirect to "the CDN" (here the second port, so
        # clients see another origin) carrying the file's commit, sha256 and size.
        location = /{REPO}/resolve/main/{NAME} {{
            add_header X-Repo-Commit {"c0ffee" * 6 + "c0ff"};
            add_header X-Linked-Etag '"{sha256}"';
            add_header X-Linked-Size {size};
            add_header ETag '"{sha256}"';
            return 302 http://127.0.0.1:{self.cdn_port}/{NAME};
        }}
    }}
}}
"""
        )
        self.process = subprocess.Popen(
            [find("nginx") or "nginx", "-c", str(work / "nginx.conf"), "-p", str(work)],
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    detail = self.process.stderr.read() if self.process.stderr else b""
                    raise SystemExit(f"nginx did not start: {detail!r}") from None
                time.sleep(0.05)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def measure(client: str, argv: list[str], output: Path, sha256: str, timeout: float) -> Run:
    """Run one client as a child and time it; CPU and peak RSS come from its rusage.

    The child is started by /usr/bin/time (a tiny process) when there is one: Linux carries
    the RSS high-water mark of the forking process into the child, so a child forked straight
    from this Python process would report at least this process's size.
    """
    stats = output.parent / "rusage.txt"
    timer = find("time")
    if timer:
        argv = [timer, "-f", "%U %S %M", "-o", str(stats), *argv]
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, errors = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, errors = process.communicate()
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if timer and stats.exists():
        user, system, rss_kb = stats.read_text().split()[-3:]
        cpu, rss = float(user) + float(system), int(rss_kb)
    else:
        cpu, rss = usage.ru_utime + usage.ru_stime - measure.cpu_so_far, usage.ru_maxrss
    measure.cpu_so_far = usage.ru_utime + usage.ru_stime
    ok = process.returncode == 0 and output.exists()
    note = ""
    if ok:
        ok = file_sha256(output) == sha256
        note = "" if ok else "WRONG BYTES"
    else:
        text = errors.decode(errors="replace").strip().splitlines()
        note = text[-1] if text else f"exit {process.returncode}"
    return Run(client, seconds, cpu, rss, ok, note[:60])


measure.cpu_so_far = 0.0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def wandown_child(
    url: str, dest: str, size: str, sha256: str, connections: str, files: str = "1"
) -> int:
    """Entry point of the wandown child: `files` copies at once, default settings but connections.

    Copy 1 goes to dest, copy N to <dest folder>/copyN/<name> (checked here, not by the caller).
    """
    from wandown.engine import DownloadJob, Engine

    first = Path(dest)
    targets = [first] + [first.parent / f"copy{n}" / first.name for n in range(2, int(files) + 1)]
    with Engine(jobs=len(targets), connections=int(connections)) as engine:
        for n, target in enumerate(targets):
            engine.submit(DownloadJob(str(n), url, target, int(size), sha256))
        results = engine.wait()
    failed = [r.message for r in results.values() if r.state != "complete"]
    if failed:
        print("; ".join(failed), file=sys.stderr)
        return 1
    return 0


def hf_child(endpoint: str, cache: str, dest: str) -> int:
    """Entry point of the huggingface_hub child process."""
    os.environ["HF_ENDPOINT"] = endpoint
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(REPO, NAME, cache_dir=cache, local_dir=dest)
    return 0 if os.path.exists(path) else 1


def sha256_cpu_per_gb() -> float:
    data = os.urandom(BLOCK)
    started = time.process_time()
    digest = hashlib.sha256()
    for _ in range((1 << 30) // BLOCK):
        digest.update(data)
    return time.process_time() - started


def run_round(title, nginx, hub, sha256, size, dest_root, args) -> list[Run]:
    runs = []
    me = [sys.executable, str(Path(__file__).resolve())]
    resolve = f"/{REPO}/resolve/main/{NAME}"
    c = args.connections

    def wandown(url: str, *extra: str):
        return lambda out: [*me, "_wandown", url, str(out), str(size), sha256, str(c), *extra]

    def hf_hub_download(endpoint: str):
        return lambda out: [*me, "_hf", endpoint, str(out.parent / "cache"), str(out.parent)]

    def aria2c(out: Path) -> list[str]:
        return [
            find("aria2c") or "aria2c", "-x16", "-s16", "-k1M", "--file-allocation=none",
            "--allow-overwrite=true", "--auto-file-renaming=false", "--quiet=true",
            "-d", str(out.parent), "-o", out.name, nginx.url(NAME),
        ]  # fmt: skip

    clients = [
        ("curl", lambda out: [find("curl") or "curl", "-sSf", "-o", str(out), nginx.url(NAME)]),
        ("aria2c -x16 -s16", aria2c),
        (f"wandown -c{c}", wandown(nginx.url(NAME))),
        ("hf_hub_download (nginx as Hub)", hf_hub_download(nginx.hub_url)),
        (f"wandown -c{c} (nginx as Hub)", wandown(nginx.hub_url + resolve)),
    ]
    if hub is not None:  # the unlimited round
        clients += [
            (f"wandown 2 files x c{c}", wandown(nginx.url(NAME), "2")),
            ("hf_hub_download (localhub)", hf_hub_download(hub.url)),
            (f"wandown -c{c} (localhub)", wandown(hub.url + resolve)),
        ]
    for client, argv_for in clients:
        if args.only and not any(word in client for word in args.only):
            continue
        folder = Path(tempfile.mkdtemp(dir=dest_root))
        out = folder / NAME
        print(f"  {title}: {client} ...", flush=True)
        run = measure(client, argv_for(out), out, sha256, args.timeout)
        if "2 files" in client:
            run.files = 2
        runs.append(run)
        shutil.rmtree(folder, ignore_errors=True)
    return runs


def print_table(title: str, runs: list[Run], size: int) -> None:
    gb = size / 1e9
    print(f"\n{title}")
    print(f"{'client':34} {'MB/s':>8} {'seconds':>8} {'CPU s/GB':>9} {'peak RSS MB':>12}  note")
    for run in runs:
        speed = run.files * size / run.seconds / 1e6 if run.ok else 0.0
        print(
            f"{run.client:34} {speed:8.0f} {run.seconds:8.2f} {run.cpu / gb / run.files:9.2f} "
            f"{run.rss_kb / 1024:12.1f}  {'ok' if run.ok else 'FAILED'} {run.note}"
        )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "_wandown":
        return wandown_child(*sys.argv[2:8])
    if len(sys.argv) > 1 and sys.argv[1] == "_hf":
        return hf_child(*sys.argv[2:5])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="file size, e.g. 2G, 500M (default 2G)")
    parser.add_argument("--cap", default="40m", help="nginx limit_rate per connection (40m)")
    parser.add_argument("--connections", type=int, default=8, help="wandown connections (8)")
    parser.add_argument("--dest", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    parser.add_argument("--no-hf", action="store_true", help="skip the localhub rows")
    parser.add_argument("--only", nargs="*", help="run only clients whose name has these words")
    parser.add_argument("--timeout", type=float, default=600, help="per client, seconds")
    args = parser.parse_args()
    size = parse_size(args.size)
    ensure_tools()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    work = Path(tempfile.mkdtemp(prefix="wandown-bench-", dir=args.dest))
    try:
        serve = work / "serve"
        (serve / REPO).mkdir(parents=True)
        print(f"generating {size / 1e9:.2f} GB in {work} ...", flush=True)
        sha256 = make_file(serve / NAME, size)
        os.link(serve / NAME, serve / REPO / NAME)
        hub = None
        if not args.no_hf:
            from wandown.localhub import LocalHub

            hub = LocalHub(serve, hash_cache=work / "hashes.json").__enter__()
            # Warm localhub's hash cache so no client pays for hashing the file.
            subprocess.run(
                ["curl", "-sSI", f"{hub.url}/{REPO}/resolve/main/{NAME}"],
                stdout=subprocess.DEVNULL,
                check=False,
            )
        tables = []
        try:
            for title, cap in (("unlimited", None), (f"nginx limit_rate {args.cap}", args.cap)):
                nginx = Nginx(serve, work / f"nginx-{cap or 'free'}", cap, sha256, size)
                try:
                    runs = run_round(
                        title, nginx, hub if cap is None else None, sha256, size, work, args
                    )
                finally:
                    nginx.stop()
                tables.append((title, runs))
        finally:
            if hub is not None:
                hub.__exit__(None, None, None)
        print(f"\nfile: {size / 1e9:.2f} GB, {os.cpu_count()} CPUs, dest {args.dest}")
        print(f"sha256 of 1 GB in this process: {sha256_cpu_per_gb():.2f} CPU s")
        for title, runs in tables:
            print_table(title, runs, size)
        return 0 if all(r.ok for _, runs in tables for r in runs) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

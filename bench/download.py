"""Compare wandown's engine with curl, aria2c and huggingface_hub on one large file, on loopback.

    python bench/download.py                      # 2 GiB to the real disk, three CDN shapes
    python bench/download.py --runs 3 --hf        # three rounds, huggingface_hub rows too
    python bench/download.py --dest /dev/shm      # leave the disk out of the measurement

nginx (Debian package; installed with apt-get if missing) serves a generated file from a temp
folder on 127.0.0.1 in three shapes: uncapped; `limit_rate` capping every connection (--cap,
the way a CDN caps each one); uneven, where two connections in ten get --slow and the others
--fast (a `map` on nginx's `$connection` serial number, the way some CDN edges are slower
than others). curl (one connection), aria2c (-x16 -s16) and wandown at its default settings
(config.json's `connections`, no bandwidth limit) fetch it from nginx; with --hf,
huggingface_hub's hf_hub_download fetches it through wandown.localhub (it needs the Hub's
protocol). Every client runs as a child process, so its CPU seconds and peak RSS come from
wait4(). Downloads go to --dest: a folder on the real disk by default (the temp folder), since
a verified file must be on disk before it is placed, and that costs time only a disk shows.
The table gives, per shape, each client's MB/s (10^6 bytes), CPU s/GiB and peak RSS (the
range over --runs), and wandown's ratios to aria2c and curl from the same rounds.

The default size is 2 GiB, smaller than the files users fetch (5-30 GB) yet long enough that
what happens once per download weighs as it does for them: at 600 MB/s a 1 GiB file is done in
under 2 s, and Python's start (about 0.15 s here, before the first request) or one step of the
connection count tried and given back moved wandown's ratio to curl by a tenth.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.nginx import Nginx as NginxProcess  # noqa: E402
from bench.nginx import NginxFailed, find_tool, free_ports  # noqa: E402

REPO = "bench/model"
NAME = "model.safetensors"
BLOCK = 16 * 1024 * 1024
CHILD = ROOT / "bench" / "child.py"  # wandown and huggingface_hub, each in a lean process


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


def ensure_tools() -> None:
    tools = (("nginx", "nginx"), ("aria2c", "aria2"), ("curl", "curl"), ("time", "time"))
    missing = [pkg for tool, pkg in tools if not find_tool(tool)]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


@dataclass(frozen=True)
class Shape:
    """How nginx paces each connection: no cap, one cap for all, or a slow share of them."""

    name: str
    cap: str | None = None
    slow: str | None = None
    fast: str | None = None

    def directives(self) -> tuple[str, str]:
        """Return the nginx http-level and location-level lines for this shape."""
        if self.slow and self.fast:
            # $connection is nginx's serial number of the TCP connection: ending in 0 or 5 is
            # two in ten, whichever edge a client's new connection lands on.
            mapping = f"map $connection $edge_rate {{ ~[05]$ {self.slow}; default {self.fast}; }}"
            return mapping, "limit_rate $edge_rate;"
        return "", f"limit_rate {self.cap};" if self.cap else ""


class Nginx:
    """nginx on 127.0.0.1 with a temp config serving one folder, paced as the shape says."""

    def __init__(self, root: Path, work: Path, shape: Shape, sha256: str, size: int) -> None:
        self.port, self.cdn_port = free_ports(2)
        self.work = work
        http_extra, limit = shape.directives()
        servers = f"""
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    {http_extra}
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
"""
        try:
            self.nginx = NginxProcess(work, servers, self.port, workers=2, connections=1024)
        except NginxFailed as error:
            raise SystemExit(str(error)) from None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.nginx.stop(graceful=True)


def child_environment() -> dict[str, str]:
    """Run Python children as an installed program runs: with their bytecode cached.

    With PYTHONDONTWRITEBYTECODE set (as on some machines) every wandown run would compile
    itself again, CPU that no installed wandown spends. The cache is kept in the temp folder.
    """
    env = {
        **os.environ,
        "PYTHONPYCACHEPREFIX": os.path.join(tempfile.gettempdir(), "wandown-bench-pycache"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


CHILD_ENV = child_environment()


def warm_up(nginx: Nginx) -> None:
    """One untimed wandown run (of a missing file) fills the bytecode cache."""
    argv = [sys.executable, str(CHILD), "wandown", nginx.url("missing")]
    argv += [str(nginx.work / "warm-up" / NAME), "1", "0" * 64]
    subprocess.run(argv, env=CHILD_ENV, capture_output=True, timeout=120, check=False)


def measure(client: str, argv: list[str], output: Path, sha256: str, timeout: float) -> Run:
    """Run one client as a child and time it; CPU and peak RSS come from its rusage.

    The child is started by /usr/bin/time (a tiny process) when there is one: Linux carries
    the RSS high-water mark of the forking process into the child, so a child forked straight
    from this Python process would report at least this process's size.
    """
    stats = output.parent / "rusage.txt"
    timer = find_tool("time")
    if timer:
        argv = [timer, "-f", "%U %S %M", "-o", str(stats), *argv]
    started = time.monotonic()
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CHILD_ENV
    )
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


def sha256_cpu_per_gb() -> float:
    data = os.urandom(BLOCK)
    started = time.process_time()
    digest = hashlib.sha256()
    for _ in range((1 << 30) // BLOCK):
        digest.update(data)
    return time.process_time() - started


ARIA2C = "aria2c -x16 -s16"
CURL = "curl"
WANDOWN = "wandown"
WANDOWN_2 = "wandown, 2 files at once"


def clients_for(shape: Shape, nginx: Nginx, hub, sha256: str, size: int, args) -> list:
    """Return (client, argv for an output path) pairs to run on this shape."""
    me = [sys.executable, str(CHILD)]
    resolve = f"/{REPO}/resolve/main/{NAME}"

    def wandown(url: str, *extra: str):
        return lambda out: [*me, "wandown", url, str(out), str(size), sha256, *extra]

    def hf_hub_download(endpoint: str):
        def argv(out: Path) -> list[str]:
            return [*me, "hf", endpoint, str(out.parent / "cache"), str(out.parent), REPO, NAME]

        return argv

    def aria2c(out: Path) -> list[str]:
        return [
            find_tool("aria2c") or "aria2c", "-x16", "-s16", "-k1M", "--file-allocation=none",
            "--allow-overwrite=true", "--auto-file-renaming=false", "--quiet=true",
            "-d", str(out.parent), "-o", out.name, nginx.url(NAME),
        ]  # fmt: skip

    def curl(out: Path) -> list[str]:
        return [find_tool("curl") or "curl", "-sSf", "-o", str(out), nginx.url(NAME)]

    clients = [(ARIA2C, aria2c), (WANDOWN, wandown(nginx.url(NAME)))]
    if shape.slow is None:
        # Capped, two files grow to 16 connections each: the memory to watch.
        clients.append((WANDOWN_2, wandown(nginx.url(NAME), "2")))
    if shape.cap is None and shape.slow is None:
        # One connection is the point of comparison only where nothing caps a connection.
        clients = [(CURL, curl), *clients]
        clients.append(("wandown (nginx as Hub, redirect)", wandown(nginx.hub_url + resolve)))
    if args.hf:
        clients.append(("hf_hub_download (nginx as Hub)", hf_hub_download(nginx.hub_url)))
        if hub is not None and shape.cap is None and shape.slow is None:
            clients.append(("hf_hub_download (localhub)", hf_hub_download(hub.url)))
            clients.append(("wandown (localhub)", wandown(hub.url + resolve)))
    return [c for c in clients if not args.only or any(w in c[0] for w in args.only)]


def run_round(shape: Shape, nginx: Nginx, hub, sha256: str, size: int, dest_root: Path, args):
    """Run every client once on this shape; return their runs in order."""
    runs = []
    for client, argv_for in clients_for(shape, nginx, hub, sha256, size, args):
        folder = Path(tempfile.mkdtemp(dir=dest_root))
        out = folder / NAME
        print(f"  {shape.name}: {client} ...", flush=True)
        os.sync()  # the last client's writeback must not slow this one
        run = measure(client, argv_for(out), out, sha256, args.timeout)
        if client == WANDOWN_2:
            run.files = 2
        runs.append(run)
        shutil.rmtree(folder, ignore_errors=True)
    return runs


def speed(run: Run, size: int) -> float:
    """Return the run's MB/s (10^6 bytes), 0 for a failed run."""
    return run.files * size / run.seconds / 1e6 if run.ok else 0.0


def cpu_per_gib(run: Run, size: int) -> float:
    return run.cpu / (run.files * size / (1 << 30))


def spread(values: list[float], digits: int = 0) -> str:
    """Show one value, or the range min-max of several."""
    low, high = min(values), max(values)
    if round(low, digits) == round(high, digits):
        return f"{low:.{digits}f}"
    return f"{low:.{digits}f}-{high:.{digits}f}"


def ratios(shape_runs: list[list[Run]], size: int, client: str, other: str) -> list[float]:
    """wandown's speed over another client's, round by round (same round, same conditions)."""
    out = []
    for runs in shape_runs:
        mine = [r for r in runs if r.client == client]
        theirs = [r for r in runs if r.client == other]
        if mine and theirs and speed(theirs[0], size) > 0:
            out.append(speed(mine[0], size) / speed(theirs[0], size))
    return out


def cpu_ratios(shape_runs: list[list[Run]], size: int) -> list[float]:
    out = []
    for runs in shape_runs:
        mine = [r for r in runs if r.client == WANDOWN and r.ok]
        theirs = [r for r in runs if r.client == ARIA2C and r.ok and r.cpu > 0]
        if mine and theirs:
            out.append(cpu_per_gib(mine[0], size) / cpu_per_gib(theirs[0], size))
    return out


def print_table(shape: Shape, shape_runs: list[list[Run]], size: int) -> None:
    print(f"\n{shape.name}")
    print(f"{'client':34} {'MB/s':>11} {'CPU s/GiB':>11} {'peak RSS MB':>12}  note")
    names = list(dict.fromkeys(r.client for runs in shape_runs for r in runs))
    for name in names:
        runs = [r for rs in shape_runs for r in rs if r.client == name]
        failed = [r for r in runs if not r.ok]
        note = f"FAILED {failed[0].note}" if failed else "ok"
        print(
            f"{name:34} {spread([speed(r, size) for r in runs]):>11} "
            f"{spread([cpu_per_gib(r, size) for r in runs], 2):>11} "
            f"{spread([r.rss_kb / 1024 for r in runs]):>12}  {note}"
        )
    for other in (ARIA2C, CURL):
        found = ratios(shape_runs, size, WANDOWN, other)
        if found:
            print(f"  wandown / {other}: {spread(found, 2)}x speed")
    found = cpu_ratios(shape_runs, size)
    if found:
        print(f"  wandown / {ARIA2C}: {spread(found, 2)}x CPU per GiB")


def shapes_from(args) -> list[Shape]:
    shapes = {
        "uncapped": Shape("uncapped"),
        "capped": Shape(f"capped: limit_rate {args.cap} per connection", cap=args.cap),
        "uneven": Shape(
            f"uneven: limit_rate {args.slow} on 2 connections in 10, {args.fast} on the others",
            slow=args.slow,
            fast=args.fast,
        ),
    }
    return [shapes[name] for name in args.shapes]


def default_dest() -> str:
    """The temp folder, unless it is in memory: the disk is part of what a user waits for."""
    return tempfile.gettempdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="file size, e.g. 1G, 500M (default 2G)")
    parser.add_argument("--runs", type=int, default=1, help="rounds over every shape (1)")
    parser.add_argument(
        "--shapes",
        nargs="+",
        choices=("uncapped", "capped", "uneven"),
        default=["uncapped", "capped", "uneven"],
    )
    parser.add_argument("--cap", default="40m", help="capped: limit_rate per connection (40m)")
    parser.add_argument("--slow", default="8m", help="uneven: the slow connections' rate (8m)")
    parser.add_argument("--fast", default="60m", help="uneven: the other connections' rate (60m)")
    parser.add_argument(
        "--dest",
        default=default_dest(),
        help="where downloads are written (default: the temp folder, on the real disk; "
        "/dev/shm leaves the disk out)",
    )
    parser.add_argument("--hf", action="store_true", help="add huggingface_hub rows (slow)")
    parser.add_argument("--only", nargs="*", help="run only clients whose name has these words")
    parser.add_argument("--timeout", type=float, default=600, help="per client, seconds")
    args = parser.parse_args()
    size = parse_size(args.size)
    ensure_tools()
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    work = Path(tempfile.mkdtemp(prefix="wandown-bench-", dir=args.dest))
    try:
        return bench(work, size, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench(work: Path, size: int, args) -> int:
    serve = work / "serve"
    (serve / REPO).mkdir(parents=True)
    print(f"generating {size / 1e9:.2f} GB in {work} ...", flush=True)
    sha256 = make_file(serve / NAME, size)
    os.link(serve / NAME, serve / REPO / NAME)
    hub = None
    if args.hf:
        from wandown.localhub import LocalHub

        hub = LocalHub(serve, hash_cache=work / "hashes.json").__enter__()
        # Warm localhub's hash cache so no client pays for hashing the file.
        subprocess.run(
            ["curl", "-sSI", f"{hub.url}/{REPO}/resolve/main/{NAME}"],
            stdout=subprocess.DEVNULL,
            check=False,
        )
    shapes = shapes_from(args)
    results: dict[str, list[list[Run]]] = {shape.name: [] for shape in shapes}
    try:
        for round_number in range(1, args.runs + 1):
            print(f"round {round_number} of {args.runs}", flush=True)
            for shape in shapes:
                nginx = Nginx(serve, work / f"nginx-{round_number}-{shape.name[:6]}", shape,
                              sha256, size)  # fmt: skip
                try:
                    if round_number == 1 and shape is shapes[0]:
                        warm_up(nginx)
                    results[shape.name].append(
                        run_round(shape, nginx, hub, sha256, size, work, args)
                    )
                finally:
                    nginx.stop()
    finally:
        if hub is not None:
            hub.__exit__(None, None, None)
    print(f"\nfile: {size / (1 << 30):.2f} GiB, {os.cpu_count()} CPUs, dest {args.dest}, "
          f"{args.runs} round(s), load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"sha256 of 1 GiB in this process: {sha256_cpu_per_gb():.2f} CPU s")
    for shape in shapes:
        print_table(shape, results[shape.name], size)
    return 0 if all(r.ok for rounds in results.values() for runs in rounds for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

"""python -m wandown.localhub ROOT: serve a folder of models the way huggingface.co does."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from wandown.errors import WandownError
from wandown.interrupts import ALL_SIGNALS, on_signals
from wandown.localhub.access import CONFIG_NAME, LocalHubConfig, load_config
from wandown.localhub.server import LocalHub


def parse_token(text: str) -> tuple[str, list[str] | str]:
    """Read ``--token TOKEN`` (every repo) or ``--token TOKEN=owner/a,owner/b``."""
    token, sep, repos = text.partition("=")
    if not token:
        raise argparse.ArgumentTypeError("a token must not be empty")
    if not sep or repos.strip() == "*":
        return token, "*"
    return token, [r.strip() for r in repos.split(",") if r.strip()]


def build_parser() -> argparse.ArgumentParser:
    """Describe the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m wandown.localhub",
        description="Serve ROOT/<owner>/<repo>/ folders and Hugging Face cache folders "
        "(models--<owner>--<repo>) found under ROOT with the Hub's download protocol.",
    )
    parser.add_argument("root", type=Path, help="folder holding the repos")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="Hub port (default: any free one)")
    parser.add_argument("--cdn-port", type=int, default=0, help="CDN port for LFS files")
    parser.add_argument(
        "--config",
        type=Path,
        help=f"JSON with gated, private and tokens (default ROOT/{CONFIG_NAME})",
    )
    parser.add_argument(
        "--gated",
        action="append",
        default=[],
        metavar="REPO",
        help="serve REPO as gated (repeatable)",
    )
    parser.add_argument(
        "--private",
        action="append",
        default=[],
        metavar="REPO",
        help="serve REPO as private (repeatable)",
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        type=parse_token,
        metavar="TOKEN[=REPO,...]",
        help="accept TOKEN, for the listed repos or all of them (repeatable)",
    )
    parser.add_argument("--page-size", type=int, default=1000, help="tree listing page size")
    return parser


def make_hub(args: argparse.Namespace) -> LocalHub:
    """Build the LocalHub the flags and the config file describe."""
    config = LocalHubConfig(gated=[], private=[], tokens={})
    config_path = args.config or args.root / CONFIG_NAME
    if args.config is not None or config_path.is_file():
        config = load_config(config_path)
    tokens = dict(config["tokens"])
    tokens.update(dict(args.token))
    return LocalHub(
        args.root,
        host=args.host,
        port=args.port,
        cdn_port=args.cdn_port,
        gated=[*config["gated"], *args.gated],
        private=[*config["private"], *args.private],
        tokens=tokens,
        page_size=args.page_size,
    )


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C, SIGTERM or a hang-up, then save what was hashed."""
    args = build_parser().parse_args(argv)
    if args.page_size < 1:
        print("localhub: error: --page-size must be at least 1", file=sys.stderr)
        return 2
    done = threading.Event()
    with on_signals(lambda signum: done.set(), ALL_SIGNALS):
        try:
            hub = make_hub(args).start()
        except WandownError as err:
            print(f"localhub: error: {err}", file=sys.stderr)
            return err.exit_code
        try:
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"listening on http://{host}:{hub.port}", flush=True)
            print(f"cdn on http://{host}:{hub.cdn_port}", flush=True)
            while not done.wait(0.5):
                pass
        finally:
            hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

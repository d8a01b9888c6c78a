"""Command line: flags, then config, then one mode (the interface, --list, --download...)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from wandown import __version__
from wandown.catalog import Catalog, load_catalog
from wandown.config import Config, load_config
from wandown.errors import WandownError
from wandown.fsutil import cache_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wandown",
        description="Smart model downloader for Wan2GP: links what your model hub already has, "
        "downloads the rest.",
    )
    parser.add_argument("--version", action="version", version=f"wandown {__version__}")
    settings = parser.add_argument_group("settings (override config.json)")
    settings.add_argument(
        "--config-file",
        metavar="PATH",
        default="config.json",
        help="configuration file (default: config.json in the current folder; created if missing)",
    )
    settings.add_argument(
        "--limit", metavar="KB", type=float, help="bandwidth limit in KB/s (overrides the config)"
    )
    settings.add_argument("--no-limit", action="store_true", help="no bandwidth limit")
    settings.add_argument(
        "--hub-dir", metavar="PATH", help='your local model hub folder ("" disables hub features)'
    )
    settings.add_argument(
        "--wan2gp-dir",
        metavar="PATH",
        help="Wan2GP's ckpts folder (its parent is the Wan2GP install)",
    )
    listing = parser.add_argument_group("listing without the interface")
    listing.add_argument("--list", action="store_true", help="print the files table and exit")
    listing.add_argument("--json", action="store_true", help="with --list: print JSON instead")
    listing.add_argument("--missing", action="store_true", help="only files not yet present")
    listing.add_argument(
        "--all-variants",
        action="store_true",
        help="also the variants Wan2GP would not load with its current settings",
    )
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if args.hub_dir is not None:
        overrides["hub_directory"] = args.hub_dir
    if args.wan2gp_dir is not None:
        overrides["wan2gp_directory"] = args.wan2gp_dir
    if args.no_limit:
        overrides["bandwidth_limit_kb"] = None
    elif args.limit is not None:
        if args.limit < 0:
            raise WandownError("--limit must be 0 or more KB/s")
        overrides["bandwidth_limit_kb"] = args.limit
    return overrides


def notice(message: str) -> None:
    """Tell the user something on stderr, one line, never mixed into the table on stdout."""
    print(f"wandown: {message}", file=sys.stderr)


def _ascii_only() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "ascii").lower().replace("-", "")
    return encoding not in ("utf8", "utf16", "utf32")


def run_list(args: argparse.Namespace, catalog: Catalog) -> int:
    from wandown import listing

    records = listing.select_records(catalog, args.missing, args.all_variants)
    if args.json:
        print(listing.to_json(records))
        return 0
    rows = listing.table_rows(records, len(catalog.models))
    for line in listing.format_table(rows, ascii_only=_ascii_only()):
        print(line)
    print(listing.summary(records))
    return 0


def run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.json and not args.list:
        raise WandownError("--json goes with --list")
    config: Config = load_config(Path(args.config_file), _overrides(args))
    for message in config.notices:
        notice(message)
    catalog = load_catalog(config.wan2gp_root)
    for message in catalog.notices:
        notice(message)
    if args.list:
        return run_list(args, catalog)
    # The interactive table is the default mode once it exists; until then, list.
    return run_list(args, catalog)


def _crash_log(exc: BaseException) -> Path | None:
    try:
        log_dir = cache_dir()
        log_dir.mkdir(parents=True, exist_ok=True)
        path = log_dir / "crash.log"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"--- wandown {__version__} {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            handle.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Run wandown; turn every expected failure into a message and an exit status."""
    try:
        return run(argv)
    except WandownError as exc:
        notice(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        notice("interrupted")
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:
        log = _crash_log(exc)
        where = f"; details are in {log}" if log else ""
        notice(f"internal error: {exc.__class__.__name__}: {exc}{where}")
        return 70

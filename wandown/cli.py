"""Command line: flags, then config, then one mode (the interface, --list, --download...)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wandown import __version__
from wandown.config import load_config
from wandown.errors import ConfigError, UsageError, WandownError
from wandown.fsutil import log_exception
from wandown.interrupts import interrupt_on_signals
from wandown.safetext import printable
from wandown.units import bandwidth_limit_kb, human_bytes

if TYPE_CHECKING:
    from wandown.session import Session


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wandown",
        description="Smart model downloader for Wan2GP: links what your model hub already has, "
        "downloads the rest. With no mode flag it opens the interactive table.",
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
    settings.add_argument("--jobs", type=int, metavar="N", help="files downloaded at once")
    settings.add_argument(
        "--connections",
        type=int,
        metavar="N",
        help="most connections per file (more are opened while they help)",
    )
    hub = parser.add_argument_group("the Hugging Face Hub")
    hub.add_argument(
        "--offline",
        action="store_true",
        help="no network at all: cached or imported metadata and the hub only "
        "(also HF_HUB_OFFLINE=1)",
    )
    hub.add_argument(
        "--reset-cache", action="store_true", help="forget the cached Hub metadata before loading"
    )
    hub.add_argument(
        "--export-metadata",
        metavar="FILE",
        help="write the Hub metadata of the catalog to FILE (for an air-gapped machine)",
    )
    hub.add_argument(
        "--import-metadata", metavar="FILE", help="add the Hub metadata in FILE to the cache"
    )
    modes = parser.add_argument_group("without the interface")
    modes.add_argument("--list", action="store_true", help="print the files table and exit")
    modes.add_argument("--json", action="store_true", help="with --list: print JSON instead")
    modes.add_argument("--missing", action="store_true", help="only files not yet present")
    modes.add_argument(
        "--all-variants",
        action="store_true",
        help="also the variants Wan2GP would not load with its current settings",
    )
    modes.add_argument(
        "--download",
        nargs="+",
        metavar="SEL",
        help="link or download files: model ids, file names, destinations, "
        "'needed' (every needed file) or 'missing'",
    )
    modes.add_argument(
        "--dry-run",
        action="store_true",
        help="with --download: print what would be done, do nothing",
    )
    modes.add_argument(
        "--dedupe",
        action="store_true",
        help="replace files under the Wan2GP folder that are identical to hub "
        "files with links to them",
    )
    modes.add_argument("--yes", action="store_true", help="with --dedupe: do not ask")
    demo = parser.add_argument_group("trying it out")
    demo.add_argument(
        "--demo",
        action="store_true",
        help="run on a throw-away sandbox: a small Wan2GP, a local Hub on loopback "
        "and a model hub (combine with --list or --download)",
    )
    demo.add_argument(
        "--keep-demo",
        action="store_true",
        help="with --demo: keep the sandbox folder and say where it is",
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
        try:
            overrides["bandwidth_limit_kb"] = bandwidth_limit_kb(args.limit, "--limit")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    for key in ("jobs", "connections"):
        value = getattr(args, key)
        if value is not None:
            if value < 1:
                raise ConfigError(f"--{key} must be 1 or more")
            overrides[key] = value
    return overrides


def notice(message: str) -> None:
    """Tell the user something on stderr, one line, never mixed into the table on stdout.

    Messages carry names from files and servers: printable() keeps them one harmless line.
    """
    print(f"wandown: {printable(message)}", file=sys.stderr, flush=True)


def _ascii_only() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "ascii").lower().replace("-", "")
    return encoding not in ("utf8", "utf16", "utf32")


def _check_args(args: argparse.Namespace) -> None:
    if args.json and not args.list:
        raise UsageError("--json goes with --list")
    if args.dry_run and not args.download:
        raise UsageError("--dry-run goes with --download")
    if args.yes and not args.dedupe:
        raise UsageError("--yes goes with --dedupe")
    if args.keep_demo and not args.demo:
        raise UsageError("--keep-demo goes with --demo")
    if args.demo:
        clashing = [
            flag
            for flag, value in (
                ("--wan2gp-dir", args.wan2gp_dir),
                ("--hub-dir", args.hub_dir),
                ("--config-file", args.config_file != "config.json"),
                ("--dedupe", args.dedupe),
                ("--import-metadata", args.import_metadata),
                ("--export-metadata", args.export_metadata),
            )
            if value
        ]
        if clashing:
            raise UsageError(
                f"--demo runs on its own sandbox; it does not go with {', '.join(clashing)}"
            )
    chosen = [m for m in ("list", "download", "dedupe") if getattr(args, m)]
    if len(chosen) > 1:
        raise UsageError(f"choose one of --{chosen[0]} and --{chosen[1]}")


def run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _check_args(args)
    if not args.demo:
        return run_configured(args)
    from wandown.demo import demo_sandbox

    with demo_sandbox(keep=args.keep_demo, notice=notice) as sandbox:  # sets HF_ENDPOINT too
        args.config_file = str(sandbox.config_file)
        return run_configured(args)


def run_configured(args: argparse.Namespace) -> int:
    """Run the chosen mode with the settings of args.config_file and the flags."""
    config = load_config(Path(args.config_file), _overrides(args))
    for message in config.notices:
        notice(message)

    from wandown.remote import hub_settings
    from wandown.session import RunOptions, Session

    settings = hub_settings()
    if args.offline:
        settings = dataclasses.replace(settings, offline=True)
    options = RunOptions(
        jobs=config.jobs,
        connections=config.connections,
        limit_kb=config.bandwidth_limit_kb,
    )
    session = Session(config, settings, options, notice)
    try:
        with interrupt_on_signals():
            return _run_mode(args, session)
    except KeyboardInterrupt:
        notice("interrupted; partial downloads are kept, run again to resume")
        return 130
    finally:
        session.shutdown()


def _run_mode(args: argparse.Namespace, session: Session) -> int:
    interactive = not (args.list or args.download or args.dedupe or args.export_metadata)
    if args.import_metadata:
        count = session.import_metadata(Path(args.import_metadata))
        notice(f"imported metadata for {count} entries from {args.import_metadata}")
        if interactive:  # an import alone is a complete run
            return 0
    if interactive and not (sys.stdin.isatty() and sys.stdout.isatty()):
        if args.reset_cache:  # a script asking only for that
            session.reset_cache()
            return 0
        raise UsageError(
            "the interactive table needs a terminal; use --list or --download SEL for scripts"
        )
    session.load(
        reset_cache=args.reset_cache,
        progress=None if session.offline else _metadata_progress(),
        with_hub=bool(args.download or args.dedupe or interactive),
    )
    if args.export_metadata:
        count = session.export_metadata(Path(args.export_metadata))
        notice(f"wrote metadata for {count} entries to {args.export_metadata}")
        if not (args.list or args.download or args.dedupe):
            return 0
    if args.list:
        return run_list(args, session)
    if args.download:
        return run_download(args, session)
    if args.dedupe:
        return run_dedupe(args, session)
    from wandown import tui

    # From here on stderr is under curses: notices (a reload's, the workers') go to the status line.
    session.notices_to_status_line()
    return tui.run(session)


def _metadata_progress() -> Callable[[int, int], None]:
    shown = {"last": 0.0}

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - shown["last"] > 2:
            shown["last"] = now
            if total and done < total:
                notice(f"fetching Hub metadata: {done} of {total} files")

    return progress


def run_list(args: argparse.Namespace, session: Session) -> int:
    from wandown import listing

    loaded = session.loaded
    records = listing.select_records(loaded, args.missing, args.all_variants)
    if args.json:
        print(listing.to_json(records, ascii_only=_ascii_only()))
        return 0
    rows = listing.table_rows(records, len(loaded.catalog.models))
    for line in listing.format_table(rows, ascii_only=_ascii_only()):
        print(line)
    print(listing.summary(records))
    return 0


def run_download(args: argparse.Namespace, session: Session) -> int:
    from wandown.plain import PlainReporter, all_present, summary_lines

    dests = session.select(args.download)
    if args.dry_run:
        for line in session.describe_plan(dests):
            print(printable(line))
        return 0
    watched = set(dests)
    before = session.store.snapshot()
    todo = [d for d in dests if not before.files[d].status.present]
    size = sum(before.files[d].size or 0 for d in todo)
    print(f"{len(todo)} of {len(dests)} files to link or download ({human_bytes(size)})")
    session.start(dests)
    reporter = PlainReporter()
    version = -1
    while True:
        busy = session.busy()  # asked first: a snapshot taken after it being False is final
        snapshot = session.store.snapshot()
        if snapshot.version != version:
            version = snapshot.version
            for line in reporter.lines(snapshot, time.monotonic(), watched):
                print(line, flush=True)
        if not busy:
            break
        session.store.wait_for_change(version, 1.0)
    for line in summary_lines(snapshot, watched):
        print(line, flush=True)
    return 0 if all_present(snapshot, watched) else 1


def run_dedupe(args: argparse.Namespace, session: Session) -> int:
    from wandown.hub import dedupe

    loaded = session.loaded
    hub = loaded.hub
    if hub is None:
        raise ConfigError("--dedupe needs a hub folder (hub_directory or --hub-dir)")
    catalog = loaded.catalog
    folder = catalog.root
    if not args.yes:
        if not sys.stdin.isatty():
            raise ConfigError("--dedupe changes files; confirm with --yes when not at a terminal")
        try:
            answer = input(
                printable(
                    f"Replace files under {folder} that are identical to files in "
                    f"{hub.hub_dir} with links to them? [y/N] "
                )
            )
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            notice("nothing changed")
            return 1
    checkpoint_roots = [catalog.root / place for place in catalog.settings.checkpoints_paths]
    report = dedupe(folder, hub, protected=checkpoint_roots)
    for path, hub_file in report.replaced:
        print(printable(f"linked {path} -> {hub_file}"))
    reclaimed = human_bytes(report.bytes_reclaimed)
    count = len(report.replaced)
    what = "1 file replaced by a link" if count == 1 else f"{count} files replaced by links"
    print(f"{what}; {reclaimed} reclaimed")
    return 0


def _tolerant_output() -> None:
    """Let stdout and stderr show any name on any encoding (LC_ALL=C, a latin-1 pipe).

    A character the encoding lacks is written as a backslash escape instead of raising
    UnicodeEncodeError halfway through a listing; JSON is made ASCII-only for such a stdout.
    """
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):  # a test's or a caller's stand-in may not be
            with contextlib.suppress(ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    """Run wandown; turn every expected failure into a message and an exit status."""
    _tolerant_output()
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
        log = log_exception("crash.log", exc)
        where = f"; details are in {log}" if log else ""
        notice(f"internal error: {exc.__class__.__name__}: {exc}{where}")
        return 70

"""Command line: flags, then config, then one mode (the interface, --list, --download...)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wandown import __version__
from wandown.config import load_config
from wandown.errors import ConfigError, DiskSpaceError, UsageError, WandownError
from wandown.fsutil import log_exception
from wandown.interrupts import interrupt_on_signals
from wandown.safetext import printable
from wandown.units import bandwidth_limit_kb, human_bytes

if TYPE_CHECKING:
    from wandown.diskplan import DiskPlan
    from wandown.session import Session
    from wandown.state import FileView


SERVE_TOKEN_VARIABLE = "WANDOWN_SERVE_TOKEN"  # the --serve token, kept out of ps


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
        "--hub-dir",
        metavar="PATH",
        action="append",
        help='a local model hub folder; repeat it for several hubs ("" disables hub features)',
    )
    settings.add_argument(
        "--wan2gp-dir",
        metavar="PATH",
        help="Wan2GP's ckpts folder (its parent is the Wan2GP install)",
    )
    settings.add_argument(
        "--wan2gp-config-dir",
        metavar="PATH",
        help="the folder Wan2GP is started with as --config, whose wgp_config.json it reads",
    )
    settings.add_argument(
        "--gpu-bf16",
        choices=("yes", "no", "auto"),
        help="whether Wan2GP's GPU has fast bf16 (compute capability 8 or more); auto asks "
        "nvidia-smi. With Wan2GP's auto dtype policy, 'no' means its fp16 files",
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
        "--endpoint",
        action="append",
        metavar="URL",
        help="fetch from this Hub-compatible server (a peer, a proxy, a mirror); repeat for a "
        "list tried in order, the last one the source of truth (overrides the config's "
        "endpoints and HF_ENDPOINT)",
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
    modes.add_argument(
        "--json", action="store_true", help="with --list or --reclaim: print JSON instead"
    )
    modes.add_argument("--missing", action="store_true", help="only files not yet present")
    modes.add_argument(
        "--all-variants",
        action="store_true",
        help="also the variants Wan2GP would not load with its current settings",
    )
    modes.add_argument(
        "--download",
        nargs="*",
        metavar="SEL",
        help="link or download files: model ids, file names, destinations, "
        "'needed' (every needed file) or 'missing'",
    )
    modes.add_argument(
        "--models",
        action="append",
        metavar="ID[,ID...]",
        help="these models' missing files: ticked at start in the interface, "
        "added to the selection with --download",
    )
    modes.add_argument(
        "--force",
        action="store_true",
        help="start even when the files do not fit the disk's free space minus min_free_gb",
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
    modes.add_argument(
        "--reclaim",
        action="store_true",
        help="list what can go from the Wan2GP folder (files no model lists, unused variants, "
        "stale partial downloads, copies of hub files); delete it with --yes",
    )
    modes.add_argument(
        "--yes",
        action="store_true",
        help="with --dedupe: do not ask; with --reclaim: delete what it lists",
    )
    serving = parser.add_argument_group("serving other machines")
    serving.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve the files proven here, read-only, to other wandown and huggingface_hub "
        "clients (HOST defaults to 127.0.0.1; 0.0.0.0 for the network)",
    )
    serving.add_argument(
        "--serve-token",
        metavar="TOKEN",
        help="with --serve: require Authorization: Bearer TOKEN (overrides "
        "WANDOWN_SERVE_TOKEN and serve_token). Other users of this machine can see it in ps: "
        "prefer WANDOWN_SERVE_TOKEN or serve_token in config.json",
    )
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
        overrides["hub_directory"] = _hub_flags(args.hub_dir)
    if args.wan2gp_dir is not None:
        overrides["wan2gp_directory"] = args.wan2gp_dir
    if args.wan2gp_config_dir is not None:
        overrides["wan2gp_config_dir"] = args.wan2gp_config_dir
    if args.gpu_bf16 is not None:
        overrides["gpu_bf16"] = args.gpu_bf16
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


def _hub_flags(values: list[str]) -> str | list[str]:
    """Return what the --hub-dir flags ask for: "" (no hub) or the folders in their order."""
    if all(value == "" for value in values):
        return ""
    if "" in values:
        raise UsageError(
            '--hub-dir "" turns the hub off; it does not go with other --hub-dir folders'
        )
    return values


def notice(message: str) -> None:
    """Tell the user something on stderr, one line, never mixed into the table on stdout.

    Messages carry names from files and servers: printable() keeps them one harmless line.
    """
    print(f"wandown: {printable(message)}", file=sys.stderr, flush=True)


def _ascii_only() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "ascii").lower().replace("-", "")
    return encoding not in ("utf8", "utf16", "utf32")


def _check_args(args: argparse.Namespace) -> None:
    if args.json and not (args.list or args.reclaim):
        raise UsageError("--json goes with --list or --reclaim")
    downloading = args.download is not None
    if downloading and not args.download and not args.models:
        raise UsageError("--download needs SEL... (model ids, file names, 'missing') or --models")
    if args.dry_run and not downloading:
        raise UsageError("--dry-run goes with --download")
    if args.models and (args.list or args.dedupe or args.reclaim or args.serve):
        raise UsageError("--models goes with the interface or --download")
    if args.force and (args.list or args.dedupe or args.reclaim or args.serve):
        raise UsageError("--force goes with the interface or --download")
    if args.yes and not (args.dedupe or args.reclaim):
        raise UsageError("--yes goes with --dedupe or --reclaim")
    if args.keep_demo and not args.demo:
        raise UsageError("--keep-demo goes with --demo")
    if args.serve_token is not None and args.serve is None:
        raise UsageError("--serve-token goes with --serve")
    if args.serve is not None:
        from wandown.serve import parse_address

        parse_address(args.serve)  # a typo is told before the catalog loads
    if args.demo:
        clashing = [
            flag
            for flag, value in (
                ("--wan2gp-dir", args.wan2gp_dir),
                ("--wan2gp-config-dir", args.wan2gp_config_dir),
                ("--hub-dir", args.hub_dir and any(args.hub_dir)),
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
    chosen = [
        mode
        for mode in ("list", "download", "dedupe", "reclaim", "serve")
        if getattr(args, mode) not in (None, False)
    ]
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

    from wandown.endpoints import from_flags
    from wandown.remote import hub_settings
    from wandown.remote.settings import with_endpoints
    from wandown.session import RunOptions, Session

    endpoints = from_flags(args.endpoint) if args.endpoint else config.endpoints
    settings = with_endpoints(hub_settings(), endpoints)
    if args.offline:
        settings = dataclasses.replace(settings, offline=True)
    options = RunOptions(
        jobs=config.jobs,
        connections=config.connections,
        limit_kb=config.bandwidth_limit_kb,
    )
    session = Session(config, settings, options, notice)
    interrupted = False
    try:
        with interrupt_on_signals():
            return _run_mode(args, session)
    except KeyboardInterrupt:
        interrupted = True
        return 130
    finally:
        session.shutdown()
        if interrupted:  # said after the downloads stopped: what they left is known then
            notice(interrupted_message(session.store.snapshot().files.values()))


def interrupted_message(views: Iterable[FileView]) -> str:
    """Say what an interrupted run leaves: partial downloads to resume, or none."""
    kept = sum(1 for v in views if not v.status.present and max(v.done, v.partial) > 0)
    if kept == 0:
        return "interrupted; no partial download is kept (nothing had arrived yet)"
    if kept == 1:
        return "interrupted; the partial download is kept, run again to resume"
    return f"interrupted; {kept} partial downloads are kept, run again to resume"


def _run_mode(args: argparse.Namespace, session: Session) -> int:
    downloading = args.download is not None
    interactive = not (
        args.list
        or downloading
        or args.dedupe
        or args.reclaim
        or args.export_metadata
        or args.serve
    )
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
        with_hub=bool(downloading or args.dedupe or args.reclaim or args.serve or interactive),
    )
    if args.export_metadata:
        count = session.export_metadata(Path(args.export_metadata))
        notice(f"wrote metadata for {count} entries to {args.export_metadata}")
        if not (args.list or downloading or args.dedupe or args.reclaim or args.serve):
            return 0
    if args.list:
        return run_list(args, session)
    models = session.model_ids(args.models or [])
    if downloading:
        return run_download(args, session, models)
    if args.dedupe:
        return run_dedupe(args, session)
    if args.reclaim:
        return run_reclaim(args, session)
    if args.serve:
        return run_serve(args, session)
    from wandown import tui

    # From here on stderr is under curses: notices (a reload's, the workers') go to the status line.
    session.notices_to_status_line()
    chosen = session.chosen_models(models)  # its notices belong on the interface's status line
    return tui.run(session, preselect=session.start_selection(chosen), ask_disk=not args.force)


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
    records = listing.select_records(loaded, args.missing, args.all_variants, session.origins())
    notice(listing.settings_line(loaded))  # stderr: stdout stays the table or the JSON array
    if args.json:
        print(listing.to_json(records, ascii_only=_ascii_only()))
        return 0
    rows = listing.table_rows(records, len(loaded.catalog.models))
    for line in listing.format_table(rows, ascii_only=_ascii_only()):
        print(line)
    print(listing.summary(records))
    return 0


def run_download(args: argparse.Namespace, session: Session, models: list[str]) -> int:
    from wandown.plain import PlainReporter, all_present, summary_lines

    dests = session.select([*args.download, *models])
    disk = session.disk_plan(dests)
    if args.dry_run:
        for line in session.describe_plan(dests):
            print(printable(line))
        for line in disk_lines(disk):
            print(printable(line))
        return 0 if disk.fits or args.force else DiskSpaceError.exit_code
    if not disk.fits:
        if not args.force:
            raise DiskSpaceError(
                f"nothing started: {disk.problem()}; free space, pick fewer files "
                "(--models, SEL) or lower min_free_gb, or use --force"
            )
        notice(f"--force: starting although {disk.problem()}")
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


def disk_lines(disk: DiskPlan) -> list[str]:
    """Say the disk plan as --dry-run shows it: one line a file system (none: nothing to fetch)."""
    lines = []
    for volume in disk.volumes:
        verdict = (
            f"fits, keeping {human_bytes(volume.reserve)} free"
            if volume.fits
            else f"does not fit: {volume.problem()}"
        )
        lines.append(f"disk: {volume.summary()}; {verdict}")
    return lines


def run_dedupe(args: argparse.Namespace, session: Session) -> int:
    from wandown.hub import DedupeReport, dedupe

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
    report = DedupeReport()
    for index in hub:  # a copy linked to the first hub is no real file for the next one
        one = dedupe(folder, index, protected=checkpoint_roots)
        report.replaced += one.replaced
        report.bytes_reclaimed += one.bytes_reclaimed
    for path, hub_file in report.replaced:
        print(printable(f"linked {path} -> {hub_file}"))
    reclaimed = human_bytes(report.bytes_reclaimed)
    count = len(report.replaced)
    what = "1 file replaced by a link" if count == 1 else f"{count} files replaced by links"
    print(f"{what}; {reclaimed} reclaimed")
    return 0


def run_reclaim(args: argparse.Namespace, session: Session) -> int:
    from wandown import reclaim
    from wandown.listing import dump_json

    loaded = session.loaded
    root = loaded.catalog.root
    found = reclaim.find(loaded, notice)
    if args.json and args.yes:
        outcome = reclaim.delete(found, loaded, lambda line: None)
        print(dump_json(outcome.to_json(), ascii_only=_ascii_only()))
        return 0 if outcome.kept == 0 else 1
    if args.json:
        print(reclaim.to_json(found, root, ascii_only=_ascii_only()))
        return 0
    for line in reclaim.table(found, root):
        print(printable(line))
    print(reclaim.summary(found))
    if not found.items:
        return 0
    if not args.yes:
        print("nothing deleted; run again with --yes to delete them (hub copies become links)")
        return 0
    outcome = reclaim.delete(found, loaded, lambda line: print(printable(line), flush=True))
    print(outcome.summary())
    return 0 if outcome.kept == 0 else 1


def run_serve(args: argparse.Namespace, session: Session) -> int:
    from wandown import serve

    token = args.serve_token
    if token is None:
        token = os.environ.get(SERVE_TOKEN_VARIABLE) or session.config.serve_token
    if token is not None and not (token and token.isascii() and token.isprintable()):
        raise ConfigError("the serve token must be printable ASCII, not empty")
    if token is not None and " " in token:
        raise ConfigError("the serve token must not hold spaces")
    return serve.serve(session.loaded, args.serve, token, notice, _print_now, session.truth)


def _print_now(line: str) -> None:
    print(printable(line), flush=True)


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

"""The one way wandown handles the signals that end a run: SIGINT, SIGTERM and SIGHUP.

`on_signals` installs a handler for a block and puts the previous ones back; the rest are the
ways the program reacts: raise once and unwind (the CLI, the TUI), hold off until a cleanup is
done (the demo), or set a flag (localhub's serve loop).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
"""What ends a session besides Ctrl-C: a kill, a closed terminal or ssh session."""
ALL_SIGNALS = (signal.SIGINT, *STOP_SIGNALS)

SignalHandler = Callable[[int], None]
"""handler(signum), run in the main thread between two Python bytecodes."""
_Installed = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


@contextlib.contextmanager
def on_signals(
    handler: SignalHandler, signals: Iterable[signal.Signals] = STOP_SIGNALS
) -> Iterator[None]:
    """Run handler(signum) for each of signals arriving inside the block, then restore.

    A signal the process was started ignoring stays ignored: that is how ``nohup`` (and a shell
    starting a background job) asks a program to outlive its terminal. Python lets only the
    main thread set handlers (signal.signal raises ValueError elsewhere), so in another thread,
    as when wandown runs inside a host program, the block runs under the host's own handling.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def call(signum: int, frame: FrameType | None) -> None:
        handler(signum)

    previous: dict[signal.Signals, _Installed] = {}
    try:
        for signum in signals:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, call)
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def raise_once(
    make: Callable[[int], BaseException], signals: Iterable[signal.Signals] = STOP_SIGNALS
) -> SignalHandler:
    """Return a handler raising make(signum) at the first signal and ignoring the later ones.

    A dropped ssh session can send SIGHUP then SIGTERM; a second exception raised inside the
    cleanup the first one started (a ``finally`` restoring the terminal, closing downloads)
    would cut it short. `on_signals` puts the real handlers back when its block ends.
    """
    ignored = tuple(signals)

    def handler(signum: int) -> None:
        for other in ignored:
            signal.signal(other, signal.SIG_IGN)
        raise make(signum)

    return handler


def _keyboard_interrupt(signum: int) -> BaseException:
    return KeyboardInterrupt()


@contextlib.contextmanager
def interrupt_on_signals() -> Iterator[None]:
    """Raise KeyboardInterrupt on SIGTERM or SIGHUP inside the block, as Ctrl-C does."""
    with on_signals(raise_once(_keyboard_interrupt)):
        yield


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold off SIGINT, SIGTERM and SIGHUP until the block ends, so a cleanup is never cut short.

    A signal that arrives meanwhile raises KeyboardInterrupt once the block is done.
    """
    arrived: list[int] = []
    with on_signals(arrived.append, ALL_SIGNALS):
        yield
    if arrived:
        raise KeyboardInterrupt

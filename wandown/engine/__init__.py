"""The download engine: parallel ranges, resume, one shared limit, verification, events.

Read in this order: core.py (Engine: threads, queue, control), job.py (what a file's job
and the shared settings hold), download.py (one file's life cycle: lock, resume, verify,
place), fill.py (one pass over its bytes), crew.py (its connection threads), controller.py
(how many connections, and which one lags), connection.py (each connection's requests, reads
and retries), ranges.py (who fetches which bytes), partial.py (the hidden .wandown folder:
part, state, lock), hashing.py, writeback.py, ratelimit.py, fetch.py (resolving a Hub URL,
what an answer means), cancel.py (cutting requests in flight), events.py (what the session
receives). The rules every Hub request follows (retries, origins, redirects, messages) are
in wandown.hubhttp.

Engine and DownloadJob are loaded on first use: they bring urllib3, which a start that only
shows the table (its working files, its limit) should not wait for.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .events import FINAL_STATES, STATES, Event
from .partial import PARTIAL_FOLDER, PartialPaths
from .ratelimit import KIB, RateLimiter, kb_to_rate

if TYPE_CHECKING:
    from .core import Engine
    from .job import DownloadJob

_ON_FIRST_USE = {"Engine": "core", "DownloadJob": "job"}


def __getattr__(name: str) -> Any:
    """Load Engine or DownloadJob from its module when first asked for (PEP 562)."""
    module = _ON_FIRST_USE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "FINAL_STATES",
    "KIB",
    "PARTIAL_FOLDER",
    "STATES",
    "DownloadJob",
    "Engine",
    "Event",
    "PartialPaths",
    "RateLimiter",
    "kb_to_rate",
]

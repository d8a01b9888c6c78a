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
"""

from .core import Engine
from .events import FINAL_STATES, STATES, Event
from .job import DownloadJob
from .partial import PARTIAL_FOLDER, PartialPaths
from .ratelimit import KIB, RateLimiter, kb_to_rate

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

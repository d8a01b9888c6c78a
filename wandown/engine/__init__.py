"""The download engine: parallel ranges, resume, one shared limit, verification, events.

Read in this order: core.py (Engine: threads, queue, control), transfer.py (one file from
Hub URL to verified destination), ranges.py (who fetches which bytes), partial.py (the hidden
.wandown folder: part, state, lock), hashing.py, ratelimit.py, fetch.py (HTTP details),
events.py (what the views receive).
"""

from .core import Engine
from .events import FINAL_STATES, STATES, Event
from .partial import PARTIAL_FOLDER, PartialPaths
from .ratelimit import KIB, RateLimiter, kb_to_rate
from .transfer import DownloadJob

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

"""When a Hub request is worth another try, and how long to wait before it."""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from wandown.hubhttp.urls import header

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_SERVER_WAIT = 300.0  # a server asking for longer is answered by giving up, not by sleeping
POLL = 0.1  # how often a stoppable pause looks at its stop condition

Sleep = Callable[[float, threading.Event], object]

# draft-ietf-httpapi-ratelimit-headers as the Hub sends it ('"api";r=0;t=55') and the older
# draft's 'limit=100, remaining=0, reset=12'.
_RATELIMIT_RESET = re.compile(r"(?:^|[;,\s])(?:t|reset)\s*=\s*(\d+(?:\.\d+)?)\s*(?:[;,]|$)")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def sleep_unless_cancelled(seconds: float, cancel: threading.Event) -> None:
    """Sleep for seconds, waking at once when cancel is set."""
    cancel.wait(seconds)


def server_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Return the seconds the server asks us to wait, or None when it asks nothing usable.

    RateLimit's reset wins over Retry-After (as huggingface_hub reads them): the Hub sends
    both on a 429 and the quota's reset is the more precise. Retry-After is seconds or an HTTP
    date (RFC 9110 section 10.2.3); a date in the past is 0. Negative or garbage values are
    None, so the caller's own backoff applies. The value is never capped here: whether a long
    wait is worth it is the policy's decision (RetryPolicy.next_wait).
    """
    ratelimit = header(headers, "ratelimit")
    if ratelimit:
        match = _RATELIMIT_RESET.search(ratelimit)
        if match:
            return float(match.group(1))
    retry_after = (header(headers, "retry-after") or "").strip()
    if not retry_after:
        return None
    if _SECONDS.fullmatch(retry_after):
        return float(retry_after)
    import email.utils  # only a server's dated Retry-After needs it

    try:
        when = email.utils.parsedate_to_datetime(retry_after)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying: attempts, total wait, backoff curve, and the clock to wait on.

    `clock` measures the waits, `now` is the wall clock HTTP dates are read against, `sleep`
    pauses (tests pass fakes for all three, and for `jitter`).
    """

    max_attempts: int = 8
    budget: float = 60.0
    first_backoff: float = 0.5
    max_backoff: float = 10.0
    max_server_wait: float = MAX_SERVER_WAIT
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], float] = time.time
    sleep: Sleep = sleep_unless_cancelled
    jitter: Callable[[], float] = random.random

    def backoff(self, attempt: int, jitter: float = 0.5) -> float:
        """Return the wait before retry number `attempt` (1-based); jitter in [0, 1) spreads it.

        Jitter 0.5 gives the plain exponential curve; 0 and 1 give 75 % and 125 % of it, so
        clients that failed together do not retry together.
        """
        base: float = min(self.max_backoff, self.first_backoff * 2.0 ** (attempt - 1))
        return base * (0.75 + jitter / 2)

    def next_wait(self, attempt: int, waited: float, asked: float | None) -> float | None:
        """Return the pause before the attempt after `attempt`, or None to give up now.

        `waited` is the time spent on the request so far; `asked` what the server asked for
        (server_wait). A server asking for more than max_server_wait is not waited for.
        """
        if asked is not None and asked > self.max_server_wait:
            return None
        wait = asked if asked is not None else self.backoff(attempt, self.jitter())
        if attempt >= self.max_attempts or waited + wait > self.budget:
            return None
        return wait

    def pause(
        self, seconds: float, cancel: threading.Event, stopping: Callable[[], bool] | None = None
    ) -> None:
        """Wait seconds on the policy's clock; with `stopping`, end early as soon as it is true."""
        if stopping is None:
            self.sleep(seconds, cancel)
            return
        deadline = self.clock() + seconds
        while not stopping() and self.clock() < deadline:
            self.sleep(min(POLL, max(0.0, deadline - self.clock())), cancel)


UNLIMITED = math.inf

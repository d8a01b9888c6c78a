"""OnFirstUse: made once, on the first ask, however many threads ask at once."""

from __future__ import annotations

import threading
import time

from wandown.lazy import OnFirstUse


def test_nothing_is_made_until_asked_and_made_does_not_make_it():
    calls = []
    value = OnFirstUse(lambda: calls.append(1) or "engine")
    assert value.made() is None
    assert calls == []
    assert value.get() == "engine"
    assert value.made() == "engine"
    assert calls == [1]


def test_threads_asking_at_once_share_one_value_made_once():
    calls = []
    start = threading.Barrier(8)

    def make() -> object:
        calls.append(1)
        time.sleep(0.05)  # slow to make: the others arrive while it is being made
        return object()

    value = OnFirstUse(make)
    seen = []

    def ask() -> None:
        start.wait()
        seen.append(value.get())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len({id(v) for v in seen}) == 1 and len(seen) == 8

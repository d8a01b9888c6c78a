"""Pure parts of the engine: rate limiter on a fake clock, ranges, state, hashing, headers."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import queue
import threading
from pathlib import Path

import pytest
import urllib3

from wandown.digests import file_digest
from wandown.engine import KIB, RateLimiter, kb_to_rate
from wandown.engine.events import COMPLETE, DOWNLOADING, Event, Reporter, SpeedMeter
from wandown.engine.fetch import clean_etag, parse_content_range, read_some
from wandown.engine.hashing import PrefixHasher, git_blob_header
from wandown.engine.partial import FileLock, PartialPaths, PartialState, load_state, save_state
from wandown.engine.ranges import MIB, RangePlanner, RangeSet
from wandown.engine.reads import ReadSizes
from wandown.engine.watchdog import SpeedWatchdog, TooSlow
from wandown.huburl import origin


class FakeClock:
    """A clock whose sleep advances it; optionally runs a hook at a given time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.hooks: list[tuple[float, object]] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        due = [h for h in self.hooks if h[0] <= self.now]
        for hook in due:
            self.hooks.remove(hook)
            hook[1]()


def drain(limiter: RateLimiter, clock: FakeClock, seconds: float, want: int = 1 << 20):
    """Acquire greedily for `seconds` of fake time; return (time, cumulative bytes) samples."""
    samples = [(clock.now, 0)]
    total = 0
    end = clock.now + seconds
    while clock.now < end:
        total += limiter.acquire(want)
        samples.append((clock.now, total))
    return samples


def window_totals(samples, width: float):
    """Bytes granted in every window [t, t + width) that starts at a sample time."""
    out = []
    for i, (start, before) in enumerate(samples):
        if start + width > samples[-1][0]:
            break
        last = before
        for when, total in samples[i:]:
            if when > start + width:
                break
            last = total
        out.append(last - before)
    return out


# -- rate limiter ---------------------------------------------------------------------------


def test_kb_means_1024_bytes_and_zero_means_unlimited():
    assert KIB == 1024
    assert kb_to_rate(100) == 102400
    assert kb_to_rate(0) is None
    assert kb_to_rate(None) is None


def test_limiter_holds_every_ten_second_window_within_three_percent():
    clock = FakeClock()
    rate = 500 * KIB
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    samples = drain(limiter, clock, 60)
    totals = window_totals(samples, 10.0)
    assert totals
    for total in totals:
        assert abs(total - rate * 10) <= 0.03 * rate * 10
    overall = samples[-1][1] / (samples[-1][0] - samples[0][0])
    assert abs(overall - rate) <= 0.01 * rate


def test_limiter_never_bursts_above_one_second_after_idling():
    clock = FakeClock()
    rate = 100 * KIB
    limiter = RateLimiter(rate, clock=clock, sleep=clock.sleep)
    drain(limiter, clock, 2)
    clock.now += 50  # idle: the bucket must not hoard 50 s of tokens
    samples = drain(limiter, clock, 5)
    for total in window_totals(samples, 1.0):
        assert total <= rate * 1.0 + 64 * KIB


def test_limiter_grants_small_pieces_at_low_rates():
    clock = FakeClock()
    limiter = RateLimiter(1000, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(1 << 20) <= 200  # a fifth of a second's worth


def test_unlimited_grants_everything_without_sleeping():
    def sleep(_seconds: float) -> None:
        raise AssertionError("must not sleep")

    limiter = RateLimiter(None, sleep=sleep)
    assert limiter.acquire(5 << 20) == 5 << 20


def test_a_sleeping_reader_notices_a_new_limit_promptly():
    clock = FakeClock()
    limiter = RateLimiter(10, burst=10, clock=clock, sleep=clock.sleep)
    # At 10 B/s a 10-byte grant needs a second; lifting the limit after 0.1 s must end the wait.
    clock.hooks.append((clock.now + 0.1, lambda: limiter.set_rate(None)))
    start = clock.now
    assert limiter.acquire(5000) == 5000
    assert clock.now - start <= 0.1 + 0.05 + 1e-9


def test_raising_the_limit_takes_effect_at_once():
    clock = FakeClock()
    limiter = RateLimiter(10 * KIB, clock=clock, sleep=clock.sleep)
    drain(limiter, clock, 5)
    limiter.set_rate(1000 * KIB)
    samples = drain(limiter, clock, 10)
    assert samples[-1][1] == pytest.approx(1000 * KIB * 10, rel=0.03)


def test_acquire_returns_zero_when_cancelled():
    clock = FakeClock()
    limiter = RateLimiter(1, burst=1, clock=clock, sleep=clock.sleep)
    limiter.acquire(1)
    stop = threading.Event()
    clock.hooks.append((clock.now + 0.2, stop.set))
    assert limiter.acquire(100, stop.is_set) == 0


def test_limiter_is_shared_fairly_enough_by_threads():
    limiter = RateLimiter(2000 * KIB)
    got = [0, 0, 0, 0]

    def reader(i: int, end: float) -> None:
        import time

        while time.monotonic() < end:
            got[i] += limiter.acquire(1 << 20)

    import time

    end = time.monotonic() + 0.5
    threads = [threading.Thread(target=reader, args=(i, end)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Loose: a correctness bound (never far above the limit), not a speed check.
    assert sum(got) <= 2000 * KIB * 0.5 + 2000 * KIB / 5 + 4 * 64 * KIB
    assert all(g > 0 for g in got)


# -- ranges -----------------------------------------------------------------------------------


def test_rangeset_merges_and_finds_gaps():
    done = RangeSet()
    done.add(10, 20)
    done.add(30, 40)
    done.add(20, 25)
    assert done.ranges() == [(10, 25), (30, 40)]
    done.add(5, 35)
    assert done.ranges() == [(5, 40)]
    done.add(0, 5)
    assert done.prefix_end() == 40
    assert done.missing(50) == [(40, 50)]
    assert RangeSet([(3, 4), (8, 9)]).missing(10) == [(0, 3), (4, 8), (9, 10)]
    assert RangeSet().missing(7) == [(0, 7)]
    assert RangeSet([(0, 7)]).covers(7)
    assert RangeSet([(2, 4)]).total() == 2
    empty = RangeSet()
    empty.add(5, 5)
    assert empty.ranges() == []


def test_planner_hands_out_ranges_in_order_and_shrinks_them_at_the_end():
    planner = RangePlanner(100 * 1024, RangeSet(), connections=4, max_chunk=10240, min_chunk=1024)
    sizes = []
    starts = []
    while (work := planner.next()) is not None and work.start < 100 * 1024:
        starts.append(work.start)
        sizes.append(work.end - work.start)
        planner.advance(work, work.end - work.start)
        planner.finish(work)
    assert starts == sorted(starts)
    assert sum(sizes) == 100 * 1024
    assert sizes[0] == 10240
    assert sizes[-1] < sizes[0]  # the tail is cut finer so connections finish together
    assert planner.done.covers(100 * 1024)
    assert not planner.remaining_work()


def test_an_idle_connection_takes_half_of_the_largest_range_in_flight():
    planner = RangePlanner(4096, RangeSet(), connections=1, max_chunk=4096, min_chunk=512)
    slow = planner.next()
    assert (slow.start, slow.end) == (0, 4096)
    planner.advance(slow, 1024)
    helper = planner.next()
    assert (helper.start, helper.end) == (2560, 4096)
    assert slow.end == 2560
    # Bytes the slow one already read past its new end are not counted as its work.
    planner.advance(slow, 2000)
    assert planner.done.ranges() == [(0, 2560)]
    planner.finish(slow)
    planner.advance(helper, 1536)
    planner.finish(helper)
    assert planner.done.covers(4096)
    assert planner.next() is None


def test_an_unfinished_range_goes_back_to_the_plan():
    planner = RangePlanner(1000, RangeSet([(0, 100)]), connections=1, max_chunk=1000, min_chunk=10)
    work = planner.next()
    assert (work.start, work.end) == (100, 1000)
    planner.advance(work, 300)
    planner.finish(work)  # the connection broke
    again = planner.next()
    assert (again.start, again.end) == (400, 1000)


class CountingCondition(threading.Condition):
    """A Condition that counts its notify_all calls."""

    def __init__(self) -> None:
        super().__init__()
        self.wakes = 0

    def notify_all(self) -> None:
        self.wakes += 1
        super().notify_all()


def test_only_a_longer_done_prefix_wakes_the_hasher():
    planner = RangePlanner(4096, RangeSet(), connections=2, max_chunk=2048, min_chunk=512)
    planner.changed = CountingCondition()
    head, tail = planner.next(), planner.next()
    assert (head.start, tail.start) == (0, 2048)
    planner.advance(tail, 1024)  # past a gap: of no use to the hasher yet
    assert planner.changed.wakes == 0
    planner.advance(head, 1024)
    assert planner.changed.wakes == 1
    planner.advance(head, 1024)  # joins the tail's bytes: the prefix jumps to 3072
    assert planner.changed.wakes == 2 and planner.prefix_end() == 3072


def test_reads_grow_while_they_come_back_full_and_shrink_when_they_do_not():
    reads = ReadSizes(most=MIB)
    with reads.joined():
        sizes = reads.response()
        assert sizes.size == 256 * KIB
        sizes.after(256 * KIB, 256 * KIB)
        assert sizes.size == 512 * KIB
        sizes.after(512 * KIB, 512 * KIB)
        sizes.after(MIB, MIB)
        assert sizes.size == MIB  # never past `most`
        sizes.after(MIB, 600 * KIB)
        assert sizes.size == MIB  # 1.2 MiB would pass `most`
        sizes.after(MIB, 100 * KIB)
        assert sizes.size == 200 * KIB  # twice what arrived: no read allocates much unfilled
        sizes.after(200 * KIB, 1)
        assert sizes.size == 64 * KIB  # never under the smallest read


def test_many_connections_share_one_bound_on_read_memory():
    reads = ReadSizes(most=MIB, memory=8 * MIB)
    with contextlib.ExitStack() as running:
        for _ in range(8):
            running.enter_context(reads.joined())
        assert reads.largest() == MIB
        for _ in range(24):
            running.enter_context(reads.joined())
        assert reads.largest() == 256 * KIB  # 32 connections, 8 MiB between them
        sizes = reads.response()
        sizes.after(256 * KIB, 256 * KIB)
        assert sizes.size == 256 * KIB
    assert reads.largest() == MIB  # they ended
    assert ReadSizes(most=16 * KIB).response().size == 16 * KIB  # `most` bounds everything


def body(data: bytes, headers: dict[str, str]) -> urllib3.HTTPResponse:
    return urllib3.HTTPResponse(
        body=io.BytesIO(data), headers=headers, preload_content=False, status=200
    )


def test_read_some_returns_the_bytes_and_decodes_only_an_encoded_body():
    raw = os.urandom(5000)
    plain = body(raw, {})
    assert b"".join(iter(lambda: read_some(plain, 4096), b"")) == raw
    packed = body(gzip.compress(raw), {"Content-Encoding": "gzip"})
    assert b"".join(iter(lambda: read_some(packed, 4096), b"")) == raw


# -- state, lock -------------------------------------------------------------------------------


def test_partial_paths_live_in_a_hidden_folder_beside_the_destination(tmp_path: Path):
    paths = PartialPaths.for_dest(tmp_path / "models" / "x.safetensors")
    assert paths.part == tmp_path / "models" / ".wandown" / "x.safetensors.part"
    assert paths.state.name == "x.safetensors.state"
    assert paths.lock.parent == paths.folder


def test_state_round_trips_and_rejects_junk(tmp_path: Path):
    state = PartialState("http://h/r", 100, "ab" * 32, None, "c" * 40, RangeSet([(0, 10)]))
    path = tmp_path / "s.state"
    save_state(path, state)
    loaded = load_state(path)
    assert loaded is not None
    assert loaded.done == state.done
    assert loaded.same_remote(state)
    other = PartialState("http://h/r", 100, "cd" * 32, None)
    assert not loaded.same_remote(other)
    path.write_text("{not json")
    assert load_state(path) is None
    path.write_text('{"version": 99}')
    assert load_state(path) is None
    path.write_text('{"version": 1, "url": "u", "size": 1, "done": [["a", 1]]}')
    assert load_state(path) is None
    assert load_state(tmp_path / "missing") is None


def test_file_lock_is_exclusive_and_survives_removal(tmp_path: Path):
    first = FileLock(tmp_path / "f.lock")
    second = FileLock(tmp_path / "f.lock")
    assert first.try_acquire()
    assert not second.try_acquire()
    first.release(remove=True)
    assert not (tmp_path / "f.lock").exists()
    assert second.try_acquire()
    second.release()


# -- hashing -----------------------------------------------------------------------------------


def test_git_blob_sha1_matches_git():
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_header(6) == b"blob 6\x00"
    assert hashlib.sha1(git_blob_header(6) + b"hello\n").hexdigest() == (
        "ce013625030ba8dba906f756967f9e9ca394464a"
    )


def test_prefix_hasher_follows_a_growing_prefix(tmp_path: Path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "f.part"
    path.write_bytes(b"\0" * len(data))
    fd = os.open(path, os.O_RDWR)
    done = RangeSet()
    condition = threading.Condition()
    hasher = PrefixHasher(fd, "sha256", len(data), done.prefix_end, condition, threading.Event())
    hasher.start()
    # Fill the file out of order: the hasher must wait for the gap at the front.
    for start, end in [(1 << 20, 2 << 20), (2 << 20, len(data)), (0, 1 << 20)]:
        os.pwrite(fd, data[start:end], start)
        with condition:
            done.add(start, end)
            condition.notify_all()
    assert hasher.result(timeout=10) == hashlib.sha256(data).hexdigest()
    os.close(fd)
    assert file_digest(path, "sha256") == hashlib.sha256(data).hexdigest()
    assert (
        file_digest(path, "blob_sha1")
        == hashlib.sha1(git_blob_header(len(data)) + data).hexdigest()
    )


def test_prefix_hasher_stops_when_asked(tmp_path: Path):
    path = tmp_path / "f.part"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    stop = threading.Event()
    hasher = PrefixHasher(fd, "sha256", 100, lambda: 0, threading.Condition(), stop)
    hasher.start()
    stop.set()
    assert hasher.result(timeout=5) is None
    os.close(fd)


# -- HTTP details --------------------------------------------------------------------------------


def test_content_range_and_etags():
    assert parse_content_range("bytes 0-99/1000") == (0, 99, 1000)
    assert parse_content_range("bytes 5-9/*") == (5, 9, None)
    assert parse_content_range("items 0-1/2") is None
    assert parse_content_range(None) is None
    assert clean_etag('W/"ABC"') == "abc"
    assert clean_etag('"abc"') == "abc"
    assert clean_etag(None) is None
    assert origin("HTTP://Hub:80/x") == origin("http://hub/") == ("http", "hub", 80)


def test_watchdog_catches_a_trickle_but_not_our_own_limit():
    clock = FakeClock()
    dog = SpeedWatchdog(min_speed=1000, window=10, clock=clock)
    for _ in range(9):
        clock.now += 1
        dog.feed(5000)
    clock.now += 1
    dog.feed(5000)  # 50 kB in 10 s: fine
    for _ in range(9):
        clock.now += 1
        dog.feed(10)
    clock.now += 1
    with pytest.raises(TooSlow):
        dog.feed(10)
    dog = SpeedWatchdog(min_speed=1000, window=10, clock=clock)
    for _ in range(20):
        clock.now += 1
        dog.pause(0.999)  # nearly all the time went to waiting for our limiter
        dog.feed(10)


# -- events --------------------------------------------------------------------------------------


def test_reporter_throttles_progress_but_never_state_changes():
    clock = FakeClock()
    events: queue.Queue[Event] = queue.Queue()
    reporter = Reporter("k", events, per_second=10, clock=clock)
    reporter.total = 1000
    reporter.publish(DOWNLOADING, 0)
    for i in range(100):
        clock.now += 0.01
        reporter.progress(i * 10)
    reporter.publish(COMPLETE, 1000)
    reporter.progress(1000)  # nothing follows a final event
    sent = []
    while not events.empty():
        sent.append(events.get())
    assert 9 <= len(sent) - 2 <= 11
    assert sent[-1].state == COMPLETE
    assert sent[-1].final
    assert all(e.key == "k" and e.total == 1000 for e in sent)


def test_speed_meter_measures_recent_bytes_per_second():
    clock = FakeClock()
    meter = SpeedMeter(window=3, clock=clock)
    meter.update(0)
    for i in range(1, 11):
        clock.now += 1
        speed = meter.update(i * 1000)
    assert speed == pytest.approx(1000)
    clock.now += 1
    assert meter.update(0) == 0  # a discarded partial starts over

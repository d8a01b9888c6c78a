"""Adaptive connections: the controller's decisions on a fake clock, the crew on a real server.

The controller is fed simulated servers (a rate per connection, a link it cannot pass); the
crew runs the real engine against wandown.localhub on loopback. Nothing here times anything:
the fake clock drives the controller, and the server tests check what was fetched.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import types
from collections.abc import Callable

import pytest

from tests.test_engine_support import (
    KIB,
    MIB,
    check_events,
    hosted_job,
    payload,
    run_job,
    small_engine,
    wait_until,
)
from wandown.engine import connection as connection_module
from wandown.engine import fill as fill_module
from wandown.engine import hashing, writeback
from wandown.engine.cancel import CancelFlag
from wandown.engine.controller import ConnectionBudget, ConnectionController, lagging
from wandown.engine.crew import Crew
from wandown.engine.hashing import PrefixHasher
from wandown.engine.partial import PartialState
from wandown.engine.ranges import RangePlanner, RangeSet
from wandown.localhub import Fault

CAP = 40e6  # bytes per second one connection gets from a CDN that caps each one


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def simulate(
    controller: ConnectionController,
    clock: FakeClock,
    rate_of: Callable[[int], float],
    seconds: float,
    tick: float = 0.05,
) -> list[int]:
    """Run a server whose total rate is rate_of(count); return the count after every tick."""
    total = 0.0
    counts = []
    count = controller.update(0)
    for _ in range(round(seconds / tick)):
        clock.now += tick
        total += rate_of(count) * tick
        count = controller.update(int(total))
        counts.append(count)
    return counts


def capped(count: int) -> float:
    return count * CAP


def saturated(link: float) -> Callable[[int], float]:
    return lambda count: min(count * CAP, link)


# -- the controller ----------------------------------------------------------------------------


def test_it_grows_to_the_ceiling_on_a_server_that_caps_each_connection():
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, clock=clock)
    counts = simulate(controller, clock, capped, seconds=2)
    assert counts[0] == 4
    assert sorted(set(counts)) == [4, 8, 16]  # doubling: 4, 8, 16, nothing else tried
    assert counts[-1] == 16
    assert counts.index(16) * 0.05 <= 1.0  # within four intervals


def test_new_connections_are_judged_only_once_they_could_have_connected():
    # A far CDN: a new connection brings nothing for its first 0.2 s (TCP, TLS, first byte).
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, settle=0.2, clock=clock)
    opened = {n: float("-inf") for n in range(4)}  # the first four are up and running

    def far_cdn(count: int) -> float:
        for n in range(count):
            opened.setdefault(n, clock.now)
        for n in [n for n in opened if n >= count]:
            del opened[n]
        return sum(CAP for n in range(count) if clock.now - opened[n] >= 0.2)

    counts = simulate(controller, clock, far_cdn, seconds=3)
    assert counts[-1] == 16


def test_it_never_passes_the_ceiling_from_the_config():
    clock = FakeClock()
    controller = ConnectionController(6, start=4, interval=0.25, clock=clock)
    assert max(simulate(controller, clock, capped, seconds=10)) == 6


def test_on_a_saturated_link_it_gives_the_useless_step_back_and_holds():
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=5.0, clock=clock)
    counts = simulate(controller, clock, saturated(150e6), seconds=20)  # 4 x 40 already fills it
    assert max(counts) <= 8  # one doubling tried, never more
    assert counts[-1] == 4  # and given back
    # Later probes try one more now and then, and give it back: most of the time it runs 4.
    assert counts.count(4) > 0.9 * len(counts)
    assert 5 in counts


def test_under_the_bandwidth_limit_adding_connections_stops_where_it_stops_paying():
    # The shared limit is a link the controller cannot see past: more connections get no more.
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=5.0, clock=clock)
    limit = 250e6  # between 4 and 8 capped connections' worth
    counts = simulate(controller, clock, saturated(limit), seconds=20)
    assert counts.count(16) <= 8  # tried for one settle and one interval, and given back
    assert counts[-1] == 8
    assert counts.count(8) > 0.8 * len(counts)


def lucky_first_window(
    controller: ConnectionController,
    clock: FakeClock,
    count: int,
    boost: float,
    rate_of: Callable[[int], float],
) -> tuple[Callable[[int], float], list[float]]:
    """A server whose first window at `count` reads `boost` times its rate (a busy machine).

    Returns the server and a list that gets the time `count` was first run.
    """
    first_run: list[float] = []

    def noisy(running: int) -> float:
        if running == count and not first_run:
            first_run.append(clock.now)
        lucky = first_run and clock.now - first_run[0] < controller.settle + controller.interval
        return rate_of(running) * (boost if lucky else 1.0)

    return noisy, first_run


def test_an_unclear_step_is_judged_again_on_a_longer_window():
    # A link full at 600 MB/s with 4 connections of 150, but the first window after the step
    # to 8 happens to read a quarter higher: judged on it alone, 8 would be kept.
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=60.0, clock=clock)
    noisy, stepped_at = lucky_first_window(
        controller, clock, 8, 1.25, lambda count: min(count * 150e6, 600e6)
    )
    counts = simulate(controller, clock, noisy, seconds=5)
    assert stepped_at  # the step was tried
    assert counts[-1] == 4  # and given back once measured for longer
    assert max(counts) == 8


def test_a_real_partial_gain_is_kept_after_the_longer_look():
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=60.0, clock=clock)
    counts = simulate(controller, clock, lambda count: 400e6 if count < 8 else 520e6, seconds=5)
    assert counts[-1] == 8  # +30% for twice the connections: worth holding, not growing
    assert max(counts) == 8


def test_a_link_full_from_the_start_keeps_half_the_connections_if_they_carry_as_much():
    # One connection fills this link (nginx on loopback: the CPU is what is full).
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=60.0, clock=clock)
    counts = simulate(controller, clock, lambda count: 700e6, seconds=5)
    assert max(counts) == 8  # the doubling was tried
    assert counts[-1] == 2  # given back, and half the start carried as much: kept
    assert min(counts) == 2  # halved once only, never further


def test_half_the_connections_are_given_back_when_they_carry_less():
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=60.0, clock=clock)
    counts = simulate(controller, clock, saturated(150e6), seconds=5)  # 4 x 40 fill it
    assert 2 in counts  # tried
    assert counts[-1] == 4  # 2 carry 80 MB/s of 150: back to 4
    assert counts.count(2) * 0.05 <= controller.settle + 0.25  # for one window, no longer


def test_a_lucky_window_does_not_keep_half_the_connections():
    # Two connections carry 70% of what four do, but their first window reads 30% higher.
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=60.0, clock=clock)
    noisy, halved_at = lucky_first_window(
        controller, clock, 2, 1.3, lambda count: 420e6 if count < 4 else 600e6
    )
    counts = simulate(controller, clock, noisy, seconds=5)
    assert halved_at
    assert counts[-1] == 4


def test_once_a_step_paid_it_never_halves_below_what_it_measured():
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=60.0, clock=clock)
    counts = simulate(controller, clock, saturated(250e6), seconds=5)  # 8 pay, 16 do not
    after_16 = counts[counts.index(16) :]
    assert min(after_16) == 8 and counts[-1] == 8  # 4 was measured short: not tried again


def run_until_halved(controller: ConnectionController, clock: FakeClock, link: float) -> int:
    """Feed a full link until the controller tries half its start; return the bytes so far."""
    total = 0
    controller.update(0)
    while controller.count != 2:
        assert clock.now < 510, "never halved"
        clock.now += 0.05
        total += int(min(controller.count * 150e6, link) * 0.05)
        controller.update(total)
    return total


@pytest.mark.parametrize(("ceiling", "count"), [(32, 4), (3, 3)])
def test_a_file_starting_or_ending_while_a_halving_is_judged_ends_that_judgement(ceiling, count):
    # The rates before and after a file joined or left do not compare: back to the count that
    # was halved (never past the new ceiling), and on from there.
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=60.0, clock=clock)
    run_until_halved(controller, clock, 600e6)
    controller.set_ceiling(ceiling)
    assert controller.count == count
    counts = simulate(controller, clock, capped, seconds=3)  # the link has room now
    assert max(counts) <= ceiling and counts[-1] == ceiling


def test_it_finds_room_again_when_the_link_frees_up():
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, probe_every=2.0, clock=clock)
    simulate(controller, clock, saturated(150e6), seconds=5)
    counts = simulate(controller, clock, capped, seconds=20)
    assert counts[-1] > 8  # one by one it probes its way up


def test_a_count_that_goes_back_is_a_new_start_not_a_negative_rate():
    clock = FakeClock()
    controller = ConnectionController(16, start=4, interval=0.25, clock=clock)
    controller.update(0)
    clock.now += 1
    controller.update(100 * MIB)
    clock.now += 1
    assert controller.update(0) == controller.count  # a discarded partial: no decision on it


# -- fair shares -------------------------------------------------------------------------------


def test_two_files_share_the_count_evenly_and_one_leaving_gives_its_share_back():
    clock = FakeClock()
    budget = ConnectionBudget(16, start=4, interval=0.25, clock=clock)
    done = {"a": 0, "b": 0}
    budget.join("a", lambda: done["a"])
    budget.join("b", lambda: done["b"])
    shares = {"a": budget.share("a"), "b": budget.share("b")}
    assert shares == {"a": 2, "b": 2}
    for _ in range(40):  # a capped server: each connection brings CAP
        clock.now += 0.05
        for key in done:
            done[key] += int(shares[key] * CAP * 0.05)
        shares = {key: budget.share(key) for key in done}
    assert shares == {"a": 16, "b": 16}  # 32 between them, each at its own ceiling
    budget.leave("b")
    assert budget.share("a") == 16


def test_a_resumed_prefix_is_not_counted_as_speed():
    clock = FakeClock()
    budget = ConnectionBudget(16, start=4, interval=0.25, clock=clock)
    budget.share("nobody")  # the first sample: nothing yet
    budget.join("a", lambda: 900 * MIB)  # resumed: 900 MiB already on disk, none arriving
    clock.now += 0.3
    assert budget.share("a") == 4  # no phantom 3 GB/s to grow on


# -- lagging connections -----------------------------------------------------------------------


def test_a_connection_far_below_the_median_is_named():
    assert lagging([(0, 60e6), (1, 60e6), (2, 8e6), (3, 58e6)]) == [2]


def test_slow_edges_are_named_slowest_first_but_never_most_connections_at_once():
    rates = [(n, 60e6) for n in range(6)] + [(6, 8e6), (7, 2e6), (8, 9e6)]
    assert lagging(rates) == [7, 6]  # a quarter of nine, the slowest first


def test_even_connections_and_two_alone_are_left_alone():
    assert lagging([(0, 40e6), (1, 38e6), (2, 41e6), (3, 36e6)]) == []
    assert lagging([(0, 60e6), (1, 8e6)]) == []  # a slow link, or a slow edge? no telling
    assert lagging([]) == []


def test_at_the_tail_a_lone_connection_is_judged_by_the_usual_rate():
    assert lagging([(5, 1e6)], usual=60e6) == [5]
    assert lagging([(5, 50e6)], usual=60e6) == []


# -- the tail ----------------------------------------------------------------------------------


def test_a_new_connection_at_the_tail_finds_work_only_in_a_range_worth_splitting():
    planner = RangePlanner(8 * KIB, RangeSet(), connections=1, max_chunk=8 * KIB, min_chunk=KIB)
    slow = planner.next()
    assert slow is not None
    assert planner.can_take()  # the whole file in one slow range: split it
    helper = planner.next()
    assert helper is not None and helper.start == slow.end == 4 * KIB
    planner.advance(helper, helper.end - helper.start)
    planner.finish(helper)
    planner.advance(slow, 3 * KIB)
    assert not planner.can_take()  # 1 KiB left: a request of its own costs more than it saves


# -- the hasher hands finished bytes to the disk -----------------------------------------------


def test_the_hashed_prefix_is_written_back_step_by_step(tmp_path, monkeypatch):
    advised: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, how: advised.append((off, n)))
    step = 256 * KIB
    monkeypatch.setattr(writeback, "STEP", step)
    monkeypatch.setattr(hashing, "READ_BACK", 64 * KIB)
    size = 5 * step + 5
    path = tmp_path / "part"
    with open(path, "wb") as handle:
        handle.truncate(size)
    fd = os.open(path, os.O_RDONLY)
    try:
        flusher = writeback.Writeback(fd, size)
        changed = threading.Condition()
        hasher = PrefixHasher(
            fd, "sha256", size, lambda: size, changed, threading.Event(), flusher.reached
        )
        hasher.start()
        assert hasher.result(timeout=30) is not None
        flusher.stop()
    finally:
        os.close(fd)
    # In file order, every hashed byte handed over, the last ones too (before the final sync);
    # each call reaches back over the step before, so written pages leave the cache.
    assert advised
    starts = [off for off, _ in advised]
    assert starts == sorted(starts) and starts[0] == 0
    ends = [off + n for off, n in advised]
    assert ends == sorted(ends) and ends[-1] == size
    assert all(end - off >= min(step, size - off) for off, end in zip(starts, ends, strict=True))
    for (off, _), end_before in zip(advised[1:], ends, strict=False):
        assert off < end_before  # no byte skipped between two calls


def test_no_writeback_thread_is_left_behind_when_stopped_early(tmp_path):
    path = tmp_path / "part"
    path.write_bytes(b"x" * 1000)
    fd = os.open(path, os.O_RDONLY)
    try:
        flusher = writeback.Writeback(fd, 10 * writeback.STEP)
        flusher.reached(10)
        flusher.stop()
    finally:
        os.close(fd)
    assert not [t for t in threading.enumerate() if t.name == "wandown-writeback"]


# -- the real engine on loopback ---------------------------------------------------------------

NAME = "model.safetensors"


def record_writes(monkeypatch) -> list[int]:
    """Count the bytes every connection writes into part files."""
    written: list[int] = []
    real = connection_module.write_at

    def write_at(fd, data, offset, part):
        written.append(len(data))
        real(fd, data, offset, part)

    monkeypatch.setattr(connection_module, "write_at", write_at)
    return written


def test_a_stalled_connection_is_reopened_and_its_range_continues_where_it_stopped(
    localhub, tmp_path, monkeypatch
):
    data = payload(4 * MIB, seed=71)
    # One response stops for a minute after 16 KiB, as an overloaded edge does; the others run.
    stall = Fault(stall_after=16 * KIB, stall_seconds=60, times=1, server="cdn")
    job = hosted_job(localhub, NAME, tmp_path, data, stall)
    written = record_writes(monkeypatch)
    # A read timeout far beyond the wait: only a reopen can end the stalled read in time.
    result, events = run_job(job, connections=4, limit_kb=2048, timeout=60.0)
    check_events(events)
    assert result.state == "complete", result.message
    assert job.dest.read_bytes() == data
    # Not a failure and a retry with backoff: no "retrying" was ever shown.
    assert not [e for e in events if e.message and "retrying" in e.message]
    # Nothing fetched twice but the bounded overlap of a split (one read each).
    assert sum(written) <= len(data) + 8 * 16 * KIB


@pytest.mark.slow
def test_connections_given_back_stop_at_once_and_hand_their_ranges_on(
    localhub, tmp_path, monkeypatch
):
    # Under the user's limit more connections bring nothing: the step to 4 is given back and
    # then half the start is kept. Each connection given back must stop at its next read (the
    # fewer are judged alone), and the rest of its range must be fetched by the others.
    data = payload(2 * MIB, seed=91)
    job = hosted_job(localhub, NAME, tmp_path, data)
    written = record_writes(monkeypatch)
    handed_back: list[int] = []
    finish = RangePlanner.finish

    def recording_finish(planner: RangePlanner, work) -> None:
        if work.cursor < work.end:
            handed_back.append(work.end - work.cursor)
        finish(planner, work)

    monkeypatch.setattr(RangePlanner, "finish", recording_finish)
    result, events = run_job(
        job, connections=8, start_connections=2, chunk_size=MIB, limit_kb=1024, within=60
    )
    check_events(events)
    assert result.state == "complete", result.message
    assert job.dest.read_bytes() == data
    assert handed_back  # stopped mid-range, not after it
    assert not [e for e in events if e.message and "retrying" in e.message]
    assert sum(written) <= len(data) + 8 * 16 * KIB  # at most a read in flight each


def test_ranges_given_back_after_the_others_ended_are_still_fetched(tmp_path, monkeypatch):
    # Four ranges of 1 MiB, none worth splitting. Two connections are given back while their
    # reads stall; the other two finish and end, finding nothing left. Then the stalled reads
    # return and hand their ranges back to a planner nobody is taking from any more.
    size = 4 * MIB
    planner = RangePlanner(size, RangeSet(), 4, MIB, MIB)
    go, released = threading.Event(), threading.Event()
    fetched_by: dict[int, int] = {}

    def fetch(self, fd, planner, work, single, slot) -> None:
        while work.cursor < work.end and not slot.retire:
            (released if slot.number in (2, 3) else go).wait()
            planner.advance(work, 64 * KIB)
            fetched_by[slot.number] = fetched_by.get(slot.number, 0) + 64 * KIB

    monkeypatch.setattr(connection_module.Connections, "_fetch_range", fetch)
    with small_engine() as engine:
        settings = dataclasses.replace(engine.settings, connections=2, state_every=60.0)
    net = connection_module.Connections.__new__(connection_module.Connections)
    net.job = types.SimpleNamespace(key="k", dest=tmp_path / NAME)
    net.settings, net.cancel = settings, CancelFlag()
    net._abort, net._lock, net.failure = CancelFlag(), threading.Lock(), None
    crew = Crew(net, -1, planner, single=False)
    crew.resize(4)
    crew.resize(2)  # the share drops: connections 2 and 3 are given back mid-read
    go.set()
    wait_until(lambda: [s.number for s in crew.working()] == [])  # 0 and 1 found nothing left
    released.set()
    filler = fill_module.PartFill.__new__(fill_module.PartFill)
    filler.net, filler.cancel, filler.settings = net, net.cancel, settings
    filler.reporter = types.SimpleNamespace(progress=lambda done: None)
    filler.paths = types.SimpleNamespace(state=tmp_path / "x.state")
    state = PartialState("u", size, None, None)
    filler._watch(crew, planner, state, None)
    assert planner.done.covers(size), planner.done
    assert max(fetched_by) >= 4  # new connections took the ranges handed back


@pytest.mark.parametrize("files", [1, 2])
def test_downloads_verify_with_the_adaptive_count(localhub, tmp_path, files):
    jobs = []
    for n in range(files):
        data = payload(3 * MIB, seed=80 + n)
        jobs.append((hosted_job(localhub, f"m{n}.safetensors", tmp_path, data), data))
    with small_engine(connections=16, start_connections=2) as engine:
        for job, _ in jobs:
            engine.submit(job)
        results = engine.wait(timeout=30)
    for job, data in jobs:
        assert results[job.key].state == "complete", results[job.key].message
        assert job.dest.read_bytes() == data

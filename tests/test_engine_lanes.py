"""Small files have a lane of their own: they never wait behind big downloads."""

from __future__ import annotations

import pytest

from tests.test_engine_support import REPO, drain, job_for, payload, put_file, small_engine
from wandown.localhub import Fault


@pytest.mark.slow
def test_small_files_finish_while_a_big_one_is_stalled(localhub, tmp_path):
    big = payload(256 * 1024, seed=1)
    put_file(localhub, "big.safetensors", big)
    localhub.set_fault(REPO, "big.safetensors", Fault(stall_after=1000, stall_seconds=4.0, times=1))
    smalls = {f"tok{i}.json": payload(2000, seed=10 + i) for i in range(6)}
    for name, data in smalls.items():
        put_file(localhub, name, data)

    with small_engine(jobs=1, connections=1, timeout=8.0) as engine:
        engine.submit(job_for(localhub, "big.safetensors", tmp_path, big))
        for name, data in smalls.items():
            engine.submit(job_for(localhub, name, tmp_path, data))
        results = engine.wait(timeout=20)
        finals = [event.key for event in drain(engine.events) if event.final]
    assert {event.state for event in results.values()} == {"complete"}
    assert finals[-1] == "big.safetensors"  # every small file landed while it was stalled
    for name, data in smalls.items():
        assert (tmp_path / name).read_bytes() == data
    assert (tmp_path / "big.safetensors").read_bytes() == big

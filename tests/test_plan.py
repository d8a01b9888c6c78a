"""The plan: one decision per file, the same for the dry run and the real run."""

from __future__ import annotations

from pathlib import Path

from wandown import plan
from wandown.plan import Action
from wandown.remote import RemoteFile
from wandown.status import Status

REMOTE = RemoteFile("o/r", "main", "c" * 40, "m.safetensors", 2_500_000_000, "a" * 64, None)


def record(status=Status.MISSING):
    return status  # what the plan decides from: the file's presence on disk


def test_decisions():
    assert plan.decide(record(Status.EXISTS), REMOTE, None, False).action == Action.NOTHING
    linked = plan.decide(record(), REMOTE, Path("/hub/m.bin"), offline=True)
    assert (linked.action, linked.link_source) == (Action.LINK, Path("/hub/m.bin"))
    assert plan.decide(record(), REMOTE, None, False) == plan.Step(Action.DOWNLOAD, remote=REMOTE)
    offline = plan.decide(record(), REMOTE, None, True)
    assert offline.action == Action.UNKNOWN and "needs the network" in offline.reason
    gated = plan.decide(record(), None, None, False, problem="o/r is gated")
    assert (gated.action, gated.reason) == (Action.FAILED, "o/r is gated")
    assert plan.decide(record(), None, None, True).action == Action.UNKNOWN


def test_dry_run_lines():
    dest = "ckpts/m.safetensors"
    download = plan.decide(record(), REMOTE, None, False)
    assert plan.describe(dest, download) == "ckpts/m.safetensors: download 2.5 GB"
    assert plan.describe(dest, download, hub_may_hold=True) == (
        "ckpts/m.safetensors: download 2.5 GB unless a same-size hub file proves identical"
    )
    link = plan.decide(record(), REMOTE, Path("/hub/m.bin"), False)
    assert plan.describe(dest, link) == "ckpts/m.safetensors: link from /hub/m.bin"
    present = plan.decide(record(Status.LINKED), REMOTE, None, False)
    assert plan.describe(dest, present) == "ckpts/m.safetensors: linked: nothing to do"
    gated = plan.decide(record(), None, None, False, problem="o/r is gated")
    assert plan.describe(dest, gated) == "ckpts/m.safetensors: failed: o/r is gated"

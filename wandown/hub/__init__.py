"""The local model hub: scan it, remember hashes, match wanted files, link them into place.

Typical use::

    index = scan_hub(hub_dir, notices=print)          # stat only, fast on every run
    matches = index.match(wanted_files, progress=cb)   # hashes only size-equal candidates
    for wanted, hub_file in matches.items():
        link_into_place(hub_file, destination_of(wanted))
"""

from wandown.digests import Progress
from wandown.hub.hubset import HubSet, HubSummary
from wandown.hub.index import HubIndex, ModelHubError, Wanted
from wandown.hub.link import DedupeReport, LinkOutcome, dedupe, link_into_place
from wandown.hub.scan import scan_hub
from wandown.hub.sidecar import sidecar_path_for

__all__ = [
    "DedupeReport",
    "HubIndex",
    "HubSet",
    "HubSummary",
    "LinkOutcome",
    "ModelHubError",
    "Progress",
    "Wanted",
    "dedupe",
    "link_into_place",
    "scan_hub",
    "sidecar_path_for",
]

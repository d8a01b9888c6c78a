"""Whether the files a run would fetch fit their disks, before any byte is written.

Pure: the caller says how many bytes each file still needs and on which file system it lands
(a device number), and hands in what a free-space probe saw of each file system
(wandown.diskspace). Links count 0 and a partial already on disk counts what remains; that is
the caller's sum. The reserve (``min_free_gb``) is what must stay free after the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wandown.units import human_bytes

GB = 1_000_000_000  # min_free_gb's GB, the one human_bytes shows


@dataclass(frozen=True)
class Space:
    """One file system as the probe saw it: its device, where it is mounted, bytes free."""

    device: int
    mount: str
    free: int


@dataclass(frozen=True)
class Volume:
    """One file system's share of a run: bytes to fetch onto it against its room."""

    space: Space
    to_fetch: int
    reserve: int
    files: int

    @property
    def room(self) -> int:
        """Return the bytes the run may write: free space minus the reserve, never below 0."""
        return max(0, self.space.free - self.reserve)

    @property
    def shortfall(self) -> int:
        return max(0, self.to_fetch - self.room)

    @property
    def fits(self) -> bool:
        return self.shortfall == 0

    def summary(self) -> str:
        """Say it as the footer does: '412 GB to fetch · 380 GB free on /mnt/models'."""
        text = f"{human_bytes(self.to_fetch)} to fetch · {human_bytes(self.space.free)} free on "
        text += self.space.mount
        return text if self.fits else text + f" ({human_bytes(self.shortfall)} short)"

    def problem(self) -> str:
        """Say why it does not fit, naming the file system and the shortfall."""
        return (
            f"{human_bytes(self.to_fetch)} to fetch onto {self.space.mount}, which has "
            f"{human_bytes(self.space.free)} free and keeps {human_bytes(self.reserve)} "
            f"(min_free_gb): {human_bytes(self.shortfall)} short"
        )


@dataclass(frozen=True)
class DiskPlan:
    """Every file system a run writes to, the tightest first."""

    volumes: tuple[Volume, ...] = ()

    @property
    def fits(self) -> bool:
        return all(volume.fits for volume in self.volumes)

    @property
    def to_fetch(self) -> int:
        return sum(volume.to_fetch for volume in self.volumes)

    @property
    def short(self) -> tuple[Volume, ...]:
        return tuple(volume for volume in self.volumes if not volume.fits)

    def summary(self) -> str:
        """Say the plan in one short line: the tightest file system, and how many more."""
        if not self.volumes:
            return "nothing to fetch"
        text = self.volumes[0].summary()
        others = len(self.volumes) - 1
        return text + (f" (+{others} more disk{'s' if others > 1 else ''})" if others else "")

    def problem(self) -> str:
        """Say, for every file system that is short, by how much."""
        return "; ".join(volume.problem() for volume in self.short)


def plan(needs: Iterable[tuple[int, int]], spaces: Mapping[int, Space], reserve: int) -> DiskPlan:
    """Sum (device, bytes) needs per file system and set them against its free space.

    A device the probe could not see is left out (nothing is known to check it against).
    """
    sums: dict[int, list[int]] = {}
    for device, size in needs:
        if device in spaces:
            entry = sums.setdefault(device, [0, 0])
            entry[0] += max(0, size)
            entry[1] += 1
    volumes = [
        Volume(spaces[device], to_fetch, reserve, files)
        for device, (to_fetch, files) in sums.items()
    ]
    volumes.sort(key=lambda v: (v.fits, v.room - v.to_fetch, v.space.mount))
    return DiskPlan(tuple(volumes))


def reserve_bytes(min_free_gb: float) -> int:
    return int(min_free_gb * GB)

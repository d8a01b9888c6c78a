"""Human-readable sizes, speeds and durations, as pure functions."""

from __future__ import annotations

GB = 1_000_000_000


def size_gb(size: int | None) -> str:
    """Format a byte count as gigabytes with two decimals; '?' when unknown."""
    if size is None:
        return "?"
    return f"{size / GB:.2f}"


def human_bytes(size: float | None) -> str:
    """Format a byte count with a binary-free decimal unit: 512 B, 1.5 MB, 12.3 GB."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_speed(bytes_per_second: float | None) -> str:
    """Format a transfer rate: '12.3 MB/s'; '-' when idle or unknown."""
    if not bytes_per_second:
        return "-"
    return human_bytes(bytes_per_second) + "/s"


def human_duration(seconds: float | None) -> str:
    """Format an ETA: '45s', '12m05s', '3h07m'; '-' when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return "-"
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


LIMIT_MIN_KB = 1
LIMIT_MAX_KB = 1_000_000_000


def bandwidth_limit_kb(value: float | None, name: str) -> float | None:
    """Check a bandwidth limit where it enters (config file, --limit) and return it as the
    engine and the views take it: KB/s, None for no limit (the user's 0 or null).

    Below 1 KB/s a download waits minutes for each byte while the header shows "0 KB/s";
    above 1 TB/s no link is that fast and the engine's bytes per second become infinite.
    """
    if value is None or value == 0:
        return None
    # Comparisons, not float(): NaN fails them, and a huge JSON integer cannot overflow them.
    if not LIMIT_MIN_KB <= value <= LIMIT_MAX_KB:
        raise ValueError(
            f"{name} must be a number of KB/s from {LIMIT_MIN_KB} to {LIMIT_MAX_KB:,}, "
            f"or 0 for no limit, not {value}"
        )
    return float(value)

"""Pick the one variant of a file that Wan2GP loads with the current settings."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit


def strip_suffix(entry: str) -> tuple[str, str | None]:
    """Split ``url|dir`` into the URL and the folder suffix (None when there is none)."""
    url, bar, suffix = entry.partition("|")
    return url, (suffix if bar else None)


def file_name(entry: str) -> str:
    """Return the file name an entry downloads to: the last part of its URL path."""
    url, _ = strip_suffix(entry)
    path = urlsplit(url).path if "://" in url else url.replace("\\", "/")
    return unquote(posixpath.basename(path))


def pick_variant(entries: list[str], quantization: str, dtype: str) -> str | None:
    """Return the entry Wan2GP loads among variants of one file.

    With int8 quantization the entries named with int8 win, else those with fp8; with fp8 the
    other way round. Among those, names with the dtype (bf16 or fp16) win. Any other
    quantization, or no match, takes the first entry.
    """
    if not entries:
        return None
    quantization = quantization.lower()
    names = [file_name(entry).lower() for entry in entries]
    order = {"int8": ("int8", "fp8"), "fp8": ("fp8", "int8")}.get(quantization, ())
    for wanted in order:
        matching = [entry for entry, name in zip(entries, names, strict=True) if wanted in name]
        if matching:
            with_dtype = [entry for entry in matching if dtype in file_name(entry).lower()]
            return (with_dtype or matching)[0]
    return entries[0]

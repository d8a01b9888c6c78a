"""Pick the one variant of a file that Wan2GP loads, exactly as its ``get_model_filename`` does.

wgp.py ~2927-2989 (8681e9f): the quantization tokens (mmgp's ``get_quantization_tokens``: ``int8``
and ``fp8``) are matched against the lower-cased base name of each entry; the candidates are the
union of the int8 matches and the fp8 matches, in that order for ``int8`` (the other order for
``fp8``); the dtype preference (``bf16`` or ``BF16``, ``fp16`` or ``FP16``: case-sensitive) is
applied to the whole union. ``""`` counts as ``bf16``; any other quantization takes the first entry.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote, urlsplit

BF16 = "bf16"
FP16 = "fp16"
_QUANT_ORDER = {"int8": ("int8", "fp8"), "fp8": ("fp8", "int8")}


def strip_suffix(entry: str) -> tuple[str, str | None]:
    """Split ``url|dir`` into the URL and the folder suffix (None when there is none)."""
    url, bar, suffix = entry.partition("|")
    return url, (suffix if bar else None)


def file_name(entry: str) -> str:
    """Return the file name an entry downloads to: the last part of its URL path."""
    url, _ = strip_suffix(entry)
    path = urlsplit(url).path if "://" in url else url.replace("\\", "/")
    return unquote(posixpath.basename(path))


def _base_name(entry: str) -> str:
    """Return the entry's name as Wan2GP tests it: os.path.basename of the whole entry string."""
    return posixpath.basename(entry)


def pick_variant(entries: list[str], quantization: str, dtype: str) -> str | None:
    """Return the entry Wan2GP loads among variants of one file (None for no entries)."""
    if not entries:
        return None
    if len(entries) == 1:
        return entries[0]
    candidates = [
        entry
        for token in _QUANT_ORDER.get(quantization or BF16, ())
        for entry in entries
        if token in _base_name(entry).lower()
    ]
    if not candidates:
        return entries[0]
    with_dtype = [e for e in candidates if dtype in _base_name(e) or dtype.upper() in _base_name(e)]
    return (with_dtype or candidates)[0]


def policy_dtype(policy: str, bf16_supported: bool, architecture_dtype: str | None) -> str:
    """Return the dtype Wan2GP runs a model in (``get_transformer_dtype``, wgp.py ~2991-3014).

    The architecture's own ``dtype`` key wins ("fp16" gives fp16, anything else bf16); else the
    policy: ``""`` (auto) is fp16 on a GPU without bf16 support (compute capability below 8),
    "fp16" is fp16, anything else bf16.
    """
    if architecture_dtype is not None:
        return FP16 if architecture_dtype == FP16 else BF16
    if policy == "":
        return BF16 if bf16_supported else FP16
    return FP16 if policy == FP16 else BF16


def loaded_file_dtype(main_entry: str | None, dtype: str) -> str:
    """Return the dtype modules are picked with: a quanto main file's own (wgp.py ~3997-4000).

    Wan2GP tests the whole entry (URL included) for bf16/BF16, then fp16/FP16 (which wins).
    """
    if main_entry is None or "quanto" not in main_entry:
        return dtype
    if BF16 in main_entry or BF16.upper() in main_entry:
        dtype = BF16
    if FP16 in main_entry or FP16.upper() in main_entry:
        dtype = FP16
    return dtype

"""Text from files and servers made safe to show: nothing in a name can drive a terminal.

A file name from a definition (``%1b``, ``%0a``), a path or a server's message can hold escape
sequences that recolour or clear the terminal, or a newline that forges a log line. Every view
shows such text through ``printable``; JSON output needs none of it (json escapes on its own).
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls (ECMA-48 treats 0x9b as CSI), line and paragraph separators,
# the bidirectional overrides and isolates that reorder what follows them (CVE-2021-42574),
# and lone surrogates (undecodable bytes of a file name, which no stdout can encode).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """Return text with every control or reordering character shown as a visible escape."""
    text = str(text)
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text

"""Text made inert for a terminal: what an article or a URL says is shown, never obeyed.

A title or a passage can hold the bytes a terminal acts on: ESC starts sequences that clear the screen, set the
window's title or write the clipboard (OSC 52), C1 controls do the same in one byte, and bidirectional overrides
make a line read differently from what it holds (Trojan Source). The command line passes every line meant for a
person through :func:`inert`, and every JSON document through :func:`inert_json`.
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls but tab and newline, DEL, C1 controls, and the bidirectional embeddings, overrides and isolates.
ACTIVE = frozenset(
    [*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
)
_REMOVED = dict.fromkeys(ACTIVE)
_ESCAPED = {code: f"\\u{code:04x}" for code in ACTIVE}
# Finding one is a scan in C; translating is a Python call per character: most text has none, and is left as is.
_ANY_ACTIVE = re.compile("[" + "".join(re.escape(chr(code)) for code in sorted(ACTIVE)) + "]")


def inert(text: str) -> str:
    """``text`` without the characters a terminal acts on; tabs, newlines and every printable character stay.

    Only the control characters go: what followed an ESC stays visible as plain text, so nothing is hidden
    from the reader either.

    Example:
        >>> inert("\\x1b]0;pwned\\x07Drone \\u202edown\\x1b[2J")
        ']0;pwnedDrone down[2J'
    """
    return text.translate(_REMOVED) if _ANY_ACTIVE.search(text) else text


def inert_json(value: Any, **options: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, **options)`` with every character :func:`inert` removes escaped.

    The data is unchanged for whatever reads the JSON (``"\\u009b"`` is the same string as the raw character);
    only the bytes that would reach a terminal are inert. JSON escapes C0 controls itself; this adds DEL, C1 and
    the bidirectional controls, which ``ensure_ascii=False`` would otherwise write raw.
    """
    text = json.dumps(value, ensure_ascii=False, **options)
    return text.translate(_ESCAPED) if _ANY_ACTIVE.search(text) else text

"""The Shuffle app's icon (api.yaml's large_image): a key on AWS's colours, drawn as a PNG.

Every app in Shuffle/python-apps carries `large_image` (a data URL); without one the workflow
editor draws the app with no icon. It is drawn here rather than kept as a binary file, so that
`make shuffle-app` makes it and a test can regenerate it byte for byte: a palette PNG whose
image data is zlib-"stored" (level 0), which every zlib writes identically.
"""

from __future__ import annotations

import base64
import struct
import zlib

SIZE = 64
_PALETTE = bytes.fromhex("232f3eff9900")  # AWS's squid ink, and its orange


def _is_key(x: int, y: int) -> bool:
    """Whether a pixel belongs to the key: a ring (the bow), a shaft, two teeth."""
    dx, dy = x - 20, y - 32
    if 8 * 8 <= dx * dx + dy * dy <= 13 * 13:
        return True
    if 32 < x <= 54 and 29 <= y <= 35:
        return True
    return (42 <= x <= 46 or 50 <= x <= 54) and 35 < y <= 43


def png() -> bytes:
    """The icon as PNG bytes (the same bytes on every machine)."""
    rows = b"".join(b"\x00" + bytes(int(_is_key(x, y)) for x in range(SIZE)) for y in range(SIZE))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", SIZE, SIZE, 8, 3, 0, 0, 0)  # 8-bit palette colour
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"PLTE", _PALETTE),
            chunk(b"IDAT", zlib.compress(rows, 0)),
            chunk(b"IEND", b""),
        )
    )


def data_url() -> str:
    """The icon as api.yaml's large_image holds it."""
    return "data:image/png;base64," + base64.b64encode(png()).decode("ascii")

"""Draws the add-in's PNG icons (16, 32, 64, 80, 128 px) with the standard library only.

Run `python addin-manifest/make_icons.py` after changing the design; the PNGs are committed.
The icon: a blue rounded square with a white check mark, anti-aliased by 4x4 supersampling.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

SIZES = (16, 32, 64, 80, 128)
BLUE = (15, 108, 189)  # Fluent's brand blue
WHITE = (255, 255, 255)
SAMPLES = 4


def _inside_rounded_square(x: float, y: float, radius: float) -> bool:
    cx = min(max(x, radius), 1 - radius)
    cy = min(max(y, radius), 1 - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius**2


def _distance_to_segment(
    px: float, py: float, a: tuple[float, float], b: tuple[float, float]
) -> float:
    ax, ay = a
    bx, by = b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    qx, qy = ax + t * dx, ay + t * dy
    return float(((px - qx) ** 2 + (py - qy) ** 2) ** 0.5)


CHECK = ((0.26, 0.52), (0.43, 0.69), (0.75, 0.33))


def pixel(x: float, y: float) -> tuple[int, int, int, int]:
    """Colour of one sample point in unit coordinates (0..1, y down)."""
    if not _inside_rounded_square(x, y, 0.2):
        return (0, 0, 0, 0)
    stroke = min(
        _distance_to_segment(x, y, CHECK[0], CHECK[1]),
        _distance_to_segment(x, y, CHECK[1], CHECK[2]),
    )
    return (*WHITE, 255) if stroke <= 0.075 else (*BLUE, 255)


def render(size: int) -> bytes:
    rows = []
    for j in range(size):
        row = bytearray(b"\x00")  # filter type 0 for this scanline
        for i in range(size):
            acc = [0, 0, 0, 0]
            for sj in range(SAMPLES):
                for si in range(SAMPLES):
                    r, g, b, a = pixel(
                        (i + (si + 0.5) / SAMPLES) / size, (j + (sj + 0.5) / SAMPLES) / size
                    )
                    acc[0] += r * a
                    acc[1] += g * a
                    acc[2] += b * a
                    acc[3] += a
            n = SAMPLES * SAMPLES
            alpha = acc[3] / n
            if acc[3]:
                row += bytes(round(c / acc[3]) for c in acc[:3])
            else:
                row += b"\x00\x00\x00"
            row.append(round(alpha))
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        (out / f"icon-{size}.png").write_bytes(render(size))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "assets")

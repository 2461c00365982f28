"""Tiny generated media for the demo catalogue: WAV melodies and PNG avatars, from the standard library only."""

from __future__ import annotations

import io
import math
import struct
import wave
import zlib

RATE = 22_050


def melody_wav(notes: list[float], note_s: float = 0.35) -> bytes:
    """A mono 16-bit WAV playing `notes` (Hz) with a soft attack/release, so it sounds like music, not a beep."""
    frames = bytearray()
    per_note = int(RATE * note_s)
    for freq in notes:
        for i in range(per_note):
            env = min(1.0, i / 400, (per_note - i) / 1200)
            s = 0.6 * math.sin(2 * math.pi * freq * i / RATE) + 0.2 * math.sin(4 * math.pi * freq * i / RATE)
            frames += struct.pack("<h", int(12_000 * env * s))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(bytes(frames))
    return out.getvalue()


def wav_seconds(data: bytes) -> int:
    with wave.open(io.BytesIO(data)) as w:
        seconds: int = max(1, round(w.getnframes() / w.getframerate()))
        return seconds


def gradient_png(rgb_a: tuple[int, int, int], rgb_b: tuple[int, int, int], size: int = 96) -> bytes:
    """A diagonal two-colour gradient as a PNG (an avatar that tells artists apart at a glance)."""
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            t = (x + y) / (2 * size - 2)
            rows += bytes(round(a + (b - a) * t) for a, b in zip(rgb_a, rgb_b, strict=True))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b""))

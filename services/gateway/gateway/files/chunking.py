"""Cutting long audio into chunks for `Recognize`, each cut at the quietest moment near
the chunk's end, so that no word is split between two requests."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

BYTES_PER_MS = 32  # 16 kHz mono PCM16
_WINDOW_MS = 20  # the unit of loudness in which a pause is looked for


def quietest_cut(pcm: bytes, search_from: int) -> int:
    """Byte offset, at or after `search_from`, in the middle of the quietest 20 ms window."""
    window = _WINDOW_MS * BYTES_PER_MS // 2  # samples
    samples = np.frombuffer(pcm[search_from - search_from % 2 :], dtype="<i2")
    usable = len(samples) // window * window
    if usable < window:
        return len(pcm)
    energy = (samples[:usable].astype(np.float32) ** 2).reshape(-1, window).sum(axis=1)
    best = int(energy.argmin())
    return search_from - search_from % 2 + (best * window + window // 2) * 2


def chunk_pcm(
    blocks: Iterable[bytes], *, chunk_ms: int, search_ms: int
) -> Iterator[tuple[int, bytes]]:
    """(offset in ms, audio) for chunks of at most `chunk_ms`; each cut is placed at the
    quietest moment of the chunk's last `search_ms`. Holds one chunk at most."""
    chunk_bytes = chunk_ms * BYTES_PER_MS
    search_bytes = min(search_ms, chunk_ms) * BYTES_PER_MS
    pending = bytearray()
    offset = 0  # bytes of audio already emitted
    for block in blocks:
        pending += block
        while len(pending) >= chunk_bytes:
            cut = quietest_cut(bytes(pending[:chunk_bytes]), chunk_bytes - search_bytes)
            cut = max(cut, 2)
            yield offset // BYTES_PER_MS, bytes(pending[:cut])
            offset += cut
            del pending[:cut]
    if pending:
        yield offset // BYTES_PER_MS, bytes(pending)

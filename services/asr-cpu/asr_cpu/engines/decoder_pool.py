"""A pool of PocketSphinx decoders, reused across streams.

A `Decoder` takes about 0.3 s and 90 MB to create (it loads the whole en-US model), so
streams borrow one and give it back. Nothing a decoder remembers from earlier
utterances reaches a final: finals are decoded with `full_utt=True`, which normalises
over that utterance alone.
"""

from __future__ import annotations

import threading

from pocketsphinx import Decoder


class DecoderPool:
    def __init__(self, max_idle: int) -> None:
        self._idle: list[Decoder] = []
        self._max_idle = max_idle
        self._lock = threading.Lock()  # acquire/release run on executor threads
        self.created = 0

    @staticmethod
    def _create() -> Decoder:
        return Decoder(loglevel="FATAL")

    def warm(self, count: int) -> None:
        """Create decoders ahead of the first streams (blocking: call before serving)."""
        decoders = [self._create() for _ in range(count)]
        with self._lock:
            self.created += count
            self._idle.extend(decoders)

    def acquire(self) -> Decoder:
        """Borrow a decoder, creating one if none is idle (blocking)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.created += 1
        return self._create()

    def release(self, decoder: Decoder) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(decoder)

"""A stand-in for PortAudio (no sound device here): `Microphone` with its device replaced
by a thread that "captures" given audio in real-time-sized blocks, as PortAudio's thread
would call back."""

from __future__ import annotations

import threading
import time
from typing import Any

from speech_client.microphone import Microphone


class _StandInStream:
    def __init__(self, thread: threading.Thread, halt: threading.Event) -> None:
        self._thread, self._halt = thread, halt

    def stop(self) -> None:
        self._halt.set()

    def close(self) -> None:
        self._halt.set()
        self._thread.join(5)


class StandInMicrophone(Microphone):
    """Plays `audio` (PCM16 in the microphone's format), then silence, until stopped."""

    audio = b""
    block_interval_s = 0.0  # 0: as fast as the callback is taken

    def _open_stream(self) -> Any:
        block = self._frame_samples * self.format.block_bytes
        halt = threading.Event()

        def capture() -> None:
            offset = 0
            while not halt.is_set():
                data = self.audio[offset : offset + block].ljust(block, b"\x00")
                offset += block
                self.on_audio(data, len(data) // self.format.block_bytes, None, None)
                time.sleep(self.block_interval_s)

        thread = threading.Thread(target=capture, name="standin-portaudio", daemon=True)
        thread.start()
        return _StandInStream(thread, halt)

"""Deterministic speech segmentation with PocketSphinx's `Endpointer`.

Resume rests on one property: a stream started at the end offset of a final must see
the same later segments as the uninterrupted stream. The Endpointer's voice detector
adapts to what it has heard, so this segmenter starts a FRESH Endpointer at the
(frame-aligned) end of every segment, in the uninterrupted stream too, and re-feeds it
the audio after that offset which the old one had already consumed. Audio is fed in the
Endpointer's exact frame size with the remainder buffered, so request sizes never
matter. All offsets are sample indices at the input rate since the start of the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from pocketsphinx import Endpointer

SAMPLE_WIDTH = 2  # 16-bit PCM


@dataclass(frozen=True, slots=True)
class Segment:
    start: int  # first sample, since the start of the stream
    end: int  # one past the last sample; a frame boundary unless the stream ended
    pcm: bytes


class Segmenter:
    """Splits one channel of 16-bit PCM into speech segments, deterministically."""

    def __init__(self, sample_rate: int, window_s: float = 0.0, max_segment_s: float = 0.0):
        self._rate = sample_rate
        self._window_s = window_s or Endpointer.DEFAULT_WINDOW
        endpointer = self._new_endpointer()  # raises ValueError on impossible parameters
        self._frame_len = float(endpointer.frame_length)
        self.frame_samples = int(endpointer.frame_bytes) // SAMPLE_WIDTH
        window_frames = round(self._window_s / self._frame_len)
        # Speech start is back-dated by up to one window: keep that much audio (plus a
        # margin) even outside speech, and drop the rest.
        self._keep_samples = (2 * window_frames + 2) * self.frame_samples
        max_frames = round(max_segment_s / self._frame_len) if max_segment_s > 0 else 0
        self._max_segment_samples = max_frames * self.frame_samples
        self._ep = endpointer
        self._ep_origin = 0  # sample where the current Endpointer started
        self._next_feed = 0  # first sample not yet fed to the current Endpointer
        self._buf = bytearray()  # audio from self._buf_start to self.received
        self._buf_start = 0
        self.received = 0
        self.speech_start: int | None = None  # start of the segment in progress

    def _new_endpointer(self) -> Endpointer:
        return Endpointer(window=self._window_s, sample_rate=self._rate)

    def _to_sample(self, seconds: float) -> int:
        # The Endpointer reports times as a float sum of frame lengths; round to frames.
        frames = round(float(seconds) / self._frame_len)
        return self._ep_origin + frames * self.frame_samples

    def audio(self, start: int, end: int) -> bytes:
        """Buffered audio between two sample offsets (within the kept history)."""
        lo = (start - self._buf_start) * SAMPLE_WIDTH
        hi = (end - self._buf_start) * SAMPLE_WIDTH
        return bytes(self._buf[lo:hi])

    def push(self, pcm: bytes) -> list[Segment]:
        """Add audio; return the segments that ended within it."""
        self._buf += pcm
        self.received += len(pcm) // SAMPLE_WIDTH
        segments: list[Segment] = []
        step = self.frame_samples
        while self._next_feed + step <= self.received:
            lo = (self._next_feed - self._buf_start) * SAMPLE_WIDTH
            frame = bytes(self._buf[lo : lo + step * SAMPLE_WIDTH])
            self._next_feed += step
            was_in_speech = self._ep.in_speech
            if self._ep.process(frame) is None:
                continue
            if not was_in_speech:
                self.speech_start = self._to_sample(self._ep.speech_start)
            if not self._ep.in_speech:
                segments.append(self._cut(self._to_sample(self._ep.speech_end)))
            elif (
                self._max_segment_samples
                and self.speech_start is not None
                and self._next_feed >= self.speech_start + self._max_segment_samples
            ):
                # Nobody pauses: force a cut at a frame boundary, so a restart there
                # (a fresh Endpointer at that offset) still reproduces what follows.
                segments.append(self._cut(self.speech_start + self._max_segment_samples))
        self._trim()
        return segments

    def finish(self) -> Segment | None:
        """End of stream: the pending speech, if any, up to the last sample received."""
        if self.speech_start is None:
            return None
        return self._cut(self.received)

    def _cut(self, end: int) -> Segment:
        assert self.speech_start is not None
        segment = Segment(self.speech_start, end, self.audio(self.speech_start, end))
        self.speech_start = None
        self._ep = self._new_endpointer()
        self._ep_origin = end
        self._next_feed = end  # re-feed what the old Endpointer had already consumed
        return segment

    def _trim(self) -> None:
        keep_from = self._next_feed - self._keep_samples
        if self.speech_start is not None:
            keep_from = min(keep_from, self.speech_start)
        drop = keep_from - self._buf_start
        if drop > 0:
            del self._buf[: drop * SAMPLE_WIDTH]
            self._buf_start = keep_from

"""The PocketSphinx engine: real recognition on CPU, deterministic across resumes.

Per channel: a `Segmenter` finds speech segments; interim text comes from incremental
decoding of the segment in progress at a steady cadence of audio; each finished
segment is decoded again WHOLE on a fresh utterance (`full_utt=True`, cepstral mean
over that segment alone) on a freshly rebuilt front end (`reinit_feat()`), so a
final's text does not depend on what came before it, nor on the decoder's earlier use.

GIL: PocketSphinx 5.1.1 holds the GIL inside `process_raw` (measured: two threads
decoding take twice as long as one, and a pure-Python thread gets about 3 % of its
normal speed meanwhile). Running decodes in a thread pool therefore keeps the event
loop's code out of the decoder's way but gives no parallelism, and a long final decode
(about 0.17 s of CPU per second of segment) delays every other stream on this server
by that much. `max_segment_s` bounds it.
"""

from __future__ import annotations

import re

from pocketsphinx import Decoder, Endpointer, set_loglevel

from asr_cpu import audio
from asr_cpu.engines.base import StreamRecognizer
from asr_cpu.engines.decoder_pool import DecoderPool
from asr_cpu.engines.segmenter import Segment, Segmenter
from asr_cpu.results import Alternative, Result, Word
from asr_cpu.stream_config import ConfigError, StreamSettings

FRAMES_PER_SECOND = 100  # the en-US model's feature frame rate (-frate)
INTERIM_STABILITY = 0.5
_ALTERNATE_PRONUNCIATION = re.compile(r"\(\d+\)$")


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "[")) or word == "<sil>"


class ChannelRecognizer:
    """Segmentation plus decoding of one channel of 16-bit PCM at the input rate."""

    def __init__(
        self,
        decoder: Decoder,
        settings: StreamSettings,
        channel: int,
        interim_every_s: float,
        max_segment_s: float,
    ) -> None:
        self._decoder = decoder
        self._settings = settings
        self._channel = channel
        self._rate = settings.sample_rate
        self._segmenter = Segmenter(
            settings.sample_rate, settings.stop_history_ms / 1000, max_segment_s
        )
        self._interim_step = max(1, round(interim_every_s * self._rate))
        self._utt_start: int | None = None  # segment whose interim utterance is open
        self._interim_fed = 0  # sample up to which the open utterance has been fed
        self._resampler = audio.StreamResampler(self._rate)

    def push(self, pcm: bytes) -> list[Result]:
        results = [r for seg in self._segmenter.push(pcm) if (r := self._final(seg)) is not None]
        if self._settings.interim_results:
            interim = self._interim()
            if interim is not None:
                results.append(interim)
        return results

    def finish(self) -> list[Result]:
        segment = self._segmenter.finish()
        final = self._final(segment) if segment is not None else None
        return [final] if final is not None else []

    def close(self) -> None:
        """Leave the decoder idle for its next borrower."""
        self._end_interim_utterance()

    def _end_interim_utterance(self) -> None:
        if self._utt_start is not None:
            self._decoder.end_utt()
            self._utt_start = None

    def _interim(self) -> Result | None:
        start = self._segmenter.speech_start
        if start is None:
            return None
        if self._utt_start != start:
            self._end_interim_utterance()
            self._decoder.reinit_feat()  # interims, too, independent of earlier audio
            self._decoder.start_utt()
            self._utt_start = self._interim_fed = start
            self._resampler = audio.StreamResampler(self._rate)
        received = self._segmenter.received
        # Decode only at whole steps of audio from the segment start, however the
        # client sized its requests.
        mark = start + (received - start) // self._interim_step * self._interim_step
        if mark <= self._interim_fed:
            return None
        chunk = self._resampler.push(self._segmenter.audio(self._interim_fed, mark))
        self._interim_fed = mark
        self._decoder.process_raw(chunk, full_utt=False)
        hyp = self._decoder.hyp()
        if hyp is None or not hyp.hypstr:
            return None
        return Result(
            alternatives=(Alternative(hyp.hypstr),),
            is_final=False,
            stability=INTERIM_STABILITY,
            audio_processed=received / self._rate,
            channel=self._channel,
        )

    def _final(self, segment: Segment) -> Result | None:
        self._end_interim_utterance()
        pcm16k = audio.resample_to_decoder_rate(segment.pcm, self._rate)
        decoder = self._decoder
        # The feature front end remembers earlier utterances (noise-removal statistics,
        # cepstral mean), even across streams through the pool, and start_stream()
        # alone does not clear all of it: an incremental (interim) pass over the same
        # audio still changes the final. reinit_feat() (under 0.1 ms) rebuilds the
        # front end, so with full_utt=True the final depends on this segment alone.
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm16k, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        if hyp is None or not hyp.hypstr:
            return None
        start_ms = segment.start * 1000 // self._rate
        words = self._words(start_ms)
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        best = Alternative(
            hyp.hypstr, confidence, tuple(words) if self._settings.word_time_offsets else ()
        )
        return Result(
            alternatives=(best, *self._other_alternatives(hyp.hypstr)),
            is_final=True,
            audio_processed=segment.end / self._rate,
            channel=self._channel,
        )

    def _words(self, start_ms: int) -> list[Word]:
        ms_per_frame = 1000 // FRAMES_PER_SECOND
        return [
            Word(
                word=_ALTERNATE_PRONUNCIATION.sub("", s.word),
                start_ms=start_ms + s.start_frame * ms_per_frame,
                end_ms=start_ms + (s.end_frame + 1) * ms_per_frame,
                confidence=min(1.0, max(0.0, s.prob)),
            )
            for s in self._decoder.seg()
            if not _is_filler(s.word)
        ]

    def _other_alternatives(self, best: str) -> list[Alternative]:
        wanted = self._settings.max_alternatives - 1
        if wanted <= 0:
            return []
        seen = {best}
        others: list[Alternative] = []
        for hyp in self._decoder.nbest():
            if len(others) >= wanted:
                break
            if hyp.hypstr and hyp.hypstr not in seen:
                seen.add(hyp.hypstr)
                others.append(Alternative(hyp.hypstr))
        return others


class SphinxStream:
    """One stream: decodes G.711, splits or downmixes channels, one recognizer each."""

    def __init__(
        self,
        pool: DecoderPool,
        settings: StreamSettings,
        interim_every_s: float,
        max_segment_s: float,
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._decoders: list[Decoder] = []
        self._channels: list[ChannelRecognizer] = []
        count = settings.channels if settings.separate_channels else 1
        try:
            for channel in range(count):
                decoder = pool.acquire()
                self._decoders.append(decoder)
                self._channels.append(
                    ChannelRecognizer(decoder, settings, channel, interim_every_s, max_segment_s)
                )
        except BaseException:
            self.close()
            raise

    def feed(self, data: bytes) -> list[Result]:
        pcm = audio.to_pcm16(data, self._settings.encoding)
        if len(self._channels) > 1:
            return [
                r
                for rec, part in zip(
                    self._channels, audio.split_channels(pcm, len(self._channels)), strict=True
                )
                for r in rec.push(part)
            ]
        return self._channels[0].push(audio.downmix(pcm, self._settings.channels))

    def finish(self) -> list[Result]:
        return [r for rec in self._channels for r in rec.finish()]

    def close(self) -> None:
        for rec in self._channels:
            rec.close()
        for decoder in self._decoders:
            self._pool.release(decoder)
        self._decoders.clear()
        self._channels.clear()


class SphinxEngine:
    model_name = "pocketsphinx-en-US"
    blocking = True

    def __init__(
        self,
        pool: DecoderPool,
        interim_every_s: float = 0.4,
        max_segment_s: float = 20.0,
    ) -> None:
        set_loglevel("FATAL")  # PocketSphinx logs every utterance to stderr otherwise
        self._pool = pool
        self._interim_every_s = interim_every_s
        self._max_segment_s = max_segment_s

    def open_stream(self, settings: StreamSettings) -> StreamRecognizer:
        try:
            Endpointer(window=settings.stop_history_ms / 1000 or Endpointer.DEFAULT_WINDOW)
        except ValueError as exc:
            raise ConfigError(
                f"endpointing_config.stop_history {settings.stop_history_ms} ms is too short "
                f"for this server's endpointer"
            ) from exc
        return SphinxStream(
            self._pool,
            settings,
            interim_every_s=self._interim_every_s,
            max_segment_s=self._max_segment_s,
        )

    def describe(self) -> dict[str, str]:
        return {
            "type": "online",
            "streaming": "true",
            "language_code": "en-US",
            "sample_rate": str(audio.DECODER_RATE),
            "engine": "pocketsphinx",
            "max_segment_seconds": str(self._max_segment_s),
        }

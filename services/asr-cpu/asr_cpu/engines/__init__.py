"""Recognition engines, chosen in one place."""

from __future__ import annotations

from asr_cpu.engines.base import Engine, StreamRecognizer
from asr_cpu.settings import Settings

__all__ = ["Engine", "StreamRecognizer", "create_engine"]


def create_engine(settings: Settings) -> Engine:
    """Build the configured engine (blocking: PocketSphinx loads its model here)."""
    if settings.engine == "synthetic":
        from asr_cpu.engines.synthetic import SyntheticEngine

        return SyntheticEngine(settings.interim_every_s, settings.final_every_s)
    # Imported lazily so the synthetic engine never loads PocketSphinx.
    from asr_cpu.engines.decoder_pool import DecoderPool
    from asr_cpu.engines.sphinx import SphinxEngine

    # Keep as many idle decoders as streams can use at once (two channels each at most).
    pool = DecoderPool(max_idle=2 * settings.max_streams)
    pool.warm(settings.warm_decoders)
    return SphinxEngine(pool, settings.interim_every_s, settings.max_segment_s)

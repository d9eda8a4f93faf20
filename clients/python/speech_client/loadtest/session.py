"""One load-test session: stream a frame plan through the SDK and record what came back."""

from __future__ import annotations

import time

from speech_client.client import ClientOptions, Transcription
from speech_client.config import TranscriptionConfig
from speech_client.errors import TranscriptionError
from speech_client.events import (
    Transcript,
    TranscriptionResumed,
    TranscriptionStarted,
    TranscriptionStopped,
)
from speech_client.loadtest.sources import FramePlan
from speech_client.loadtest.stats import LoadStats, SessionResult
from speech_client.loadtest.timeline import SendTimes, timed_frames

NORMAL_CLOSE = 1000


async def run_session(
    url: str,
    plan: FramePlan,
    session_id: str,
    stats: LoadStats,
    *,
    frame_ms: int,
    speed: float,
    config: TranscriptionConfig | None,
    options: ClientOptions,
) -> SessionResult:
    """Run one session to its end; never raises (a failure is recorded in the result)."""
    clock = time.monotonic
    result = SessionResult(session_id, plan.name)
    times = SendTimes(plan.format, plan.frame_bytes, len(plan.frames), frame_ms)
    session = Transcription(
        url,
        timed_frames(plan.frames, times, clock),
        plan.format,
        config=config,
        session_id=session_id,
        speed=speed,
        options=options,
    )
    latencies = stats.final_latencies
    stats.active += 1
    start = clock()
    try:
        async with session:
            async for event in session:
                if isinstance(event, Transcript):
                    now = clock()
                    if result.first_transcript_s is None:
                        result.first_transcript_s = now - start
                    if not event.is_final:
                        result.interims += 1
                        continue
                    result.finals += 1
                    stats.finals += 1
                    sent = times.sent_at(event.end_ms)
                    if sent is None:
                        result.finals_without_latency += 1
                    else:
                        latencies.append(now - sent)
                elif isinstance(event, TranscriptionStarted):
                    result.started_s = clock() - start
                elif isinstance(event, TranscriptionResumed):
                    stats.resumes += 1
                elif isinstance(event, TranscriptionStopped):
                    result.stopped = True
                    result.finals_reported = event.finals
                    result.audio_ms = event.audio_ms
    except TranscriptionError as e:
        result.error_code, result.error, result.close_code = e.code, str(e), e.close_code
    except Exception as e:  # one broken session must not end the others
        result.error_code, result.error = "client_error", f"{type(e).__name__}: {e}"
    finally:
        stats.active -= 1
    if result.error_code is None:
        if result.stopped:
            result.close_code = NORMAL_CLOSE
        else:
            result.error_code, result.error = "no_stop", "ended without transcription_stopped"
    result.reconnects = session.reconnects
    stats.add(result)
    return result

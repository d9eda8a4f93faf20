"""TranscriptionConfig (PROTOCOL.md) to Riva's StreamingRecognitionConfig."""

from __future__ import annotations

from riva.client.proto import riva_asr_pb2 as asr
from riva.client.proto import riva_audio_pb2 as audio

from gateway.protocol import TranscriptionConfig

_ENCODINGS = {
    "pcm16": audio.AudioEncoding.LINEAR_PCM,
    "mulaw": audio.AudioEncoding.MULAW,
    "alaw": audio.AudioEncoding.ALAW,
    "flac": audio.AudioEncoding.FLAC,
    "ogg_opus": audio.AudioEncoding.OGGOPUS,
}


def streaming_config(config: TranscriptionConfig) -> asr.StreamingRecognitionConfig:
    recognition = asr.RecognitionConfig(
        encoding=_ENCODINGS[config.encoding],
        sample_rate_hertz=config.sample_rate_hz,
        language_code=config.language,
        max_alternatives=config.max_alternatives,
        profanity_filter=config.profanity_filter,
        enable_automatic_punctuation=config.enable_automatic_punctuation,
        enable_word_time_offsets=config.enable_word_time_offsets,
        audio_channel_count=config.channels,
        enable_separate_recognition_per_channel=config.channels > 1,
        model=config.model,
    )
    for boosted in config.boosted_phrases:
        recognition.speech_contexts.append(
            asr.SpeechContext(phrases=boosted.phrases, boost=boosted.boost)
        )
    if config.speaker_diarization:
        recognition.diarization_config.CopyFrom(
            asr.SpeakerDiarizationConfig(
                enable_speaker_diarization=True, max_speaker_count=config.max_speakers
            )
        )
    if config.endpointing is not None:
        ep = config.endpointing
        endpointing = asr.EndpointingConfig()
        if ep.start_history_ms is not None:
            endpointing.start_history = ep.start_history_ms
        if ep.start_threshold is not None:
            endpointing.start_threshold = ep.start_threshold
        if ep.stop_history_ms is not None:
            endpointing.stop_history = ep.stop_history_ms
        if ep.stop_threshold is not None:
            endpointing.stop_threshold = ep.stop_threshold
        if ep.stop_history_eou_ms is not None:
            endpointing.stop_history_eou = ep.stop_history_eou_ms
        if ep.stop_threshold_eou is not None:
            endpointing.stop_threshold_eou = ep.stop_threshold_eou
        recognition.endpointing_config.CopyFrom(endpointing)
    return asr.StreamingRecognitionConfig(
        config=recognition, interim_results=config.enable_interim_results
    )

"""Whole files: decoding (WAV, FLAC, MP3, Ogg) to 16 kHz PCM, cutting long audio into
chunks at pauses, recognising them with Riva's offline `Recognize`, and the OpenAI output
formats (JSON, text, SRT, WebVTT)."""

// One transcription session over the gateway's WebSocket protocol (docs/protocol.md),
// with automatic resume: the audio after the last `audio_committed` offset is kept in a
// bounded replay buffer and re-sent from `resume_from_ms` after any reconnect.

const BYTES_PER_MS = 32; // 16 kHz, 16-bit, mono
const RESUMABLE_CLOSE_CODES = new Set([1001, 1005, 1006, 1011, 1012, 1013]);

export class TranscriptionSession {
  /**
   * @param {object} options
   * @param {string} options.url WebSocket URL of /api/v1/transcribe/{session_id}
   * @param {string} options.sessionId
   * @param {object} [options.config] TranscriptionConfig overrides
   * @param {number} [options.replayMaxMs] the most audio kept for a resume
   * @param {object} handlers onTranscript(event), onState(state, detail), onError(event)
   */
  constructor({ url, sessionId, config = {}, replayMaxMs = 120000 }, handlers) {
    this.url = url;
    this.sessionId = sessionId;
    this.config = { encoding: "pcm16", sample_rate_hz: 16000, ...config };
    this.replayMaxMs = replayMaxMs;
    this.handlers = handlers;
    this.resumeToken = null;
    this.lastSeq = 0;
    this.committedMs = 0;
    this.audioMs = 0; // audio captured so far, from the session's start
    this.replay = []; // [{startMs, pcm: Uint8Array}], in order, after committedMs
    this.replayOverflow = false;
    this.ws = null;
    this.live = false; // the gateway accepted start or resume on this socket
    this.stopping = false;
    this.stopSent = false;
    this.finished = false;
    this.attempt = 0;
    this.resumes = 0;
  }

  start() {
    this.connect();
  }

  /** Queue 16 kHz PCM16 audio (an ArrayBuffer); sent at once when the socket is live. */
  pushAudio(buffer) {
    const pcm = new Uint8Array(buffer);
    if (!pcm.length) return;
    const chunk = { startMs: this.audioMs, pcm };
    this.audioMs += pcm.length / BYTES_PER_MS;
    this.replay.push(chunk);
    this.trimReplay();
    if (this.live) this.ws.send(pcm);
  }

  /** No more audio: the gateway sends the last finals, then `transcription_stopped`. */
  stop() {
    this.stopping = true;
    this.sendStopIfLive();
  }

  // ---- connection ------------------------------------------------------------------

  connect() {
    this.live = false;
    this.stopSent = false; // a new socket: a stop sent on the old one may be lost
    this.setState(this.resumeToken ? "resuming" : "connecting");
    const ws = new WebSocket(this.url);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      if (this.resumeToken) {
        this.send({
          type: "resume_transcription",
          resume_token: this.resumeToken,
          last_seq: this.lastSeq,
        });
      } else {
        this.send({ type: "start_transcription", config: this.config });
      }
    };
    ws.onmessage = (message) => {
      if (typeof message.data === "string") this.onEvent(JSON.parse(message.data));
    };
    ws.onclose = (close) => this.onClose(ws, close.code);
  }

  onClose(ws, code) {
    if (ws !== this.ws) return; // an older socket we already replaced
    this.live = false;
    if (this.finished) return;
    if (this.fatal || !(RESUMABLE_CLOSE_CODES.has(code) || this.moving)) {
      this.finished = true;
      this.setState("failed", this.fatal ? this.fatal.message : `closed with ${code}`);
      return;
    }
    if (!this.resumeToken) {
      this.finished = true;
      this.setState("failed", "the connection dropped before the session started");
      return;
    }
    this.moving = false;
    this.attempt += 1;
    if (this.attempt > 30) {
      this.finished = true;
      this.setState("failed", "gave up reconnecting");
      return;
    }
    // Backoff with jitter: clients of a dead pod must not all come back at once.
    const base = Math.min(5000, 100 * 2 ** Math.min(this.attempt - 1, 6));
    const delay = (this.retryAfterMs || 0) + base / 2 + Math.random() * (base / 2);
    this.retryAfterMs = 0;
    this.setState("reconnecting", `attempt ${this.attempt}`);
    setTimeout(() => this.connect(), delay);
  }

  onEvent(event) {
    switch (event.event) {
      case "transcription_started":
        this.resumeToken = event.resume_token;
        this.goLive(0);
        break;
      case "transcription_resumed":
        this.resumes += 1;
        this.committedMs = Math.max(this.committedMs, event.resume_from_ms);
        this.goLive(event.resume_from_ms);
        break;
      case "transcript":
        if (event.is_final) {
          if (event.seq <= this.lastSeq) return; // already shown before a resume
          this.lastSeq = event.seq;
        }
        this.handlers.onTranscript?.(event);
        break;
      case "audio_committed":
        this.committedMs = Math.max(this.committedMs, event.committed_ms);
        this.dropCommitted();
        break;
      case "reconnect":
        // The pod is draining: move now, through the same URL.
        this.resumeToken = event.resume_token;
        this.moving = true;
        this.ws.close(1000);
        break;
      case "error":
        this.handlers.onError?.(event);
        if (!event.retryable) this.fatal = event;
        else if (event.retry_after_s) this.retryAfterMs = event.retry_after_s * 1000;
        break;
      case "transcription_stopped":
        this.finished = true;
        this.setState("stopped", event);
        break;
    }
  }

  goLive(fromMs) {
    this.live = true;
    this.attempt = 0;
    this.setState("live");
    // Re-send what the gateway has not committed, from its offset (a chunk may straddle it).
    for (const chunk of this.replay) {
      const endMs = chunk.startMs + chunk.pcm.length / BYTES_PER_MS;
      if (endMs <= fromMs) continue;
      const skip = Math.max(0, Math.round((fromMs - chunk.startMs) * BYTES_PER_MS));
      this.ws.send(skip ? chunk.pcm.subarray(skip - (skip % 2)) : chunk.pcm);
    }
    this.sendStopIfLive();
  }

  sendStopIfLive() {
    if (this.stopping && this.live && !this.stopSent) {
      this.stopSent = true;
      this.send({ type: "stop_transcription" });
    }
  }

  send(message) {
    this.ws.send(JSON.stringify(message));
  }

  // ---- replay buffer ---------------------------------------------------------------

  dropCommitted() {
    while (this.replay.length) {
      const chunk = this.replay[0];
      if (chunk.startMs + chunk.pcm.length / BYTES_PER_MS > this.committedMs) break;
      this.replay.shift();
    }
  }

  trimReplay() {
    // Bounded memory: past the limit the oldest audio goes, and a later resume may lose it.
    while (this.replay.length && this.audioMs - this.replay[0].startMs > this.replayMaxMs) {
      this.replay.shift();
      this.replayOverflow = true;
    }
  }

  replayMs() {
    return this.replay.reduce((ms, c) => ms + c.pcm.length / BYTES_PER_MS, 0);
  }

  setState(state, detail) {
    this.state = state;
    this.handlers.onState?.(state, detail);
  }
}

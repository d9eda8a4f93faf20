// The page: microphone -> AudioWorklet (16 kHz PCM16) -> TranscriptionSession -> text.

import { TranscriptionSession } from "./session.js";

const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"),
  stop: $("stop"),
  state: $("state"),
  sessionId: $("session-id"),
  audioMs: $("audio-ms"),
  resumes: $("resumes"),
  level: $("level"),
  finals: $("finals"),
  interim: $("interim"),
  errors: $("errors"),
};

let capture = null; // {context, stream, node}
let session = null;

// With ?record in the page's URL, every frame sent is also kept, so that a test can give
// the speech server exactly the audio the page captured.
const recording = new URLSearchParams(location.search).has("record");
const recorded = [];
window.speechPage = {
  recordedBase64() {
    const all = new Uint8Array(recorded.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const chunk of recorded) {
      all.set(chunk, at);
      at += chunk.length;
    }
    let binary = "";
    for (let i = 0; i < all.length; i += 0x8000) {
      binary += String.fromCharCode(...all.subarray(i, i + 0x8000));
    }
    return btoa(binary);
  },
};

function socketUrl(sessionId) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const url = new URL(`${scheme}://${location.host}/api/v1/transcribe/${sessionId}`);
  // Browsers cannot set headers on a WebSocket: a credential travels in the query. It is
  // a short-lived session token that the embedding site's backend got from
  // POST /api/v1/tokens (docs/auth.md), never an API key.
  const token = new URLSearchParams(location.search).get("access_token");
  if (token) url.searchParams.set("access_token", token);
  return url.toString();
}

// A session token is for one session id: the site hands the page both.
function newSessionId() {
  return new URLSearchParams(location.search).get("session_id") || crypto.randomUUID();
}

function setState(state, detail) {
  document.body.dataset.state = state;
  ui.state.textContent = detail && typeof detail === "string" ? `${state} (${detail})` : state;
  ui.resumes.textContent = String(session ? session.resumes : 0);
  if (state === "stopped" || state === "failed") {
    ui.start.disabled = false;
    ui.stop.disabled = true;
    stopCapture();
  }
}

function showTranscript(event) {
  const text = event.alternatives.length ? event.alternatives[0].transcript : "";
  if (event.is_final) {
    if (text.trim()) {
      const line = document.createElement("p");
      line.className = "final";
      line.dataset.seq = String(event.seq);
      line.textContent = text;
      ui.finals.append(line);
    }
    ui.interim.textContent = "";
  } else {
    ui.interim.textContent = text; // interim text is replaced in place
  }
}

function showLevel(rms) {
  const db = rms > 0 ? 20 * Math.log10(rms) : -100;
  ui.level.value = Math.max(0, Math.min(1, (db + 60) / 60));
}

async function startCapture(onFrame) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/capture-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "capture-processor");
  node.port.onmessage = (event) => onFrame(event.data);
  source.connect(node);
  capture = { context, stream, node, source };
}

function stopCapture() {
  if (!capture) return;
  const { context, stream, node, source } = capture;
  capture = null;
  source.disconnect();
  node.port.onmessage = null;
  stream.getTracks().forEach((track) => track.stop());
  context.close();
}

async function start() {
  ui.start.disabled = true;
  ui.finals.replaceChildren();
  ui.interim.textContent = "";
  ui.errors.textContent = "";
  const sessionId = newSessionId();
  ui.sessionId.textContent = sessionId;
  session = new TranscriptionSession(
    { url: socketUrl(sessionId), sessionId },
    {
      onTranscript: showTranscript,
      onState: setState,
      onError: (event) => {
        ui.errors.textContent = `${event.code}: ${event.message}`;
      },
    },
  );
  let stopRequested = false;
  recorded.length = 0;
  const onFrame = ({ pcm, rms, final }) => {
    if (!session || session.stopping) return; // frames the worklet made after the flush
    if (recording) recorded.push(new Uint8Array(pcm.slice(0)));
    session.pushAudio(pcm);
    showLevel(final ? 0 : rms);
    ui.audioMs.textContent = String(Math.round(session.audioMs));
    if (final && stopRequested) {
      stopCapture();
      session.stop();
    }
  };
  try {
    await startCapture(onFrame);
  } catch (err) {
    setState("failed", `microphone: ${err.message}`);
    return;
  }
  session.start();
  ui.stop.disabled = false;
  ui.stop.onclick = () => {
    ui.stop.disabled = true;
    stopRequested = true;
    setState("stopping");
    // The worklet posts what it holds (marked final), then the session stops.
    capture.node.port.postMessage("flush");
  };
}

ui.start.onclick = start;
setState("idle");

// Transcribe a raw 16 kHz 16-bit mono PCM file over the gateway's WebSocket protocol
// (docs/protocol.md), printing each final as it lands. Browsers have WebSocket built in;
// Node.js 22 too, Node.js 20 with --experimental-websocket:
//
//   node --experimental-websocket docs/examples/transcribe.mjs ws://127.0.0.1:8080 \
//       /usr/share/pocketsphinx/test/data/goforward.raw
import { readFileSync } from "node:fs";

const [base = "ws://127.0.0.1:8080", file] = process.argv.slice(2);
const audio = readFileSync(file);
const ws = new WebSocket(`${base}/api/v1/transcribe/${crypto.randomUUID()}`);
ws.binaryType = "arraybuffer";

ws.onopen = () => {
  ws.send(JSON.stringify({ type: "start_transcription", config: { sample_rate_hz: 16000 } }));
};
ws.onmessage = ({ data }) => {
  const event = JSON.parse(data);
  if (event.event === "transcription_started") {
    for (let at = 0; at < audio.length; at += 3200) ws.send(audio.subarray(at, at + 3200)); // 100 ms
    ws.send(JSON.stringify({ type: "stop_transcription" }));
  } else if (event.event === "transcript" && event.is_final) {
    console.log(event.alternatives[0].transcript);
  } else if (event.event === "error") {
    console.error(`${event.code}: ${event.message}`);
    process.exitCode = 1;
  }
};
ws.onclose = ({ code }) => {
  if (code !== 1000) process.exitCode = 1;
};

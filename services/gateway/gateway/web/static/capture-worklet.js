// Microphone capture on the audio thread: resample to 16 kHz, convert to PCM16 (little
// endian), and post one 100 ms frame at a time to the page, with its level.
//
// The resampler is a windowed-sinc low-pass evaluated at each output instant, so it works
// for any input rate the browser picks (44.1 kHz, 48 kHz, ...) without aliasing.

const OUT_RATE = 16000;
const FRAME_SAMPLES = OUT_RATE / 10; // 100 ms
const HALF_TAPS = 16; // kernel half-width, in output samples

class Resampler {
  constructor(inRate, outRate) {
    this.step = inRate / outRate; // input samples per output sample
    this.passthrough = inRate === outRate;
    // Cut-off a little below the output's Nyquist frequency, relative to the input's.
    this.cutoff = Math.min(1, outRate / inRate) * 0.92;
    this.half = Math.ceil(HALF_TAPS * Math.max(1, this.step));
    this.buf = new Float32Array(this.half); // history of zeros before the first sample
    this.t = this.half; // input position (in buf) of the next output sample
  }

  kernel(x) {
    if (x === 0) return this.cutoff;
    const a = Math.PI * this.cutoff * x;
    const window = 0.5 * (1 + Math.cos((Math.PI * x) / this.half));
    return (this.cutoff * Math.sin(a) / a) * window;
  }

  push(input) {
    if (this.passthrough) return input.slice();
    const joined = new Float32Array(this.buf.length + input.length);
    joined.set(this.buf);
    joined.set(input, this.buf.length);
    const out = [];
    while (this.t + this.half < joined.length) {
      const centre = Math.floor(this.t);
      let sum = 0;
      let norm = 0;
      for (let k = centre - this.half + 1; k <= centre + this.half; k++) {
        const w = this.kernel(this.t - k);
        sum += joined[k] * w;
        norm += w;
      }
      out.push(norm ? sum / norm : 0);
      this.t += this.step;
    }
    const keep = Math.max(0, Math.floor(this.t) - this.half);
    this.buf = joined.slice(keep);
    this.t -= keep;
    return Float32Array.from(out);
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new Resampler(sampleRate, OUT_RATE);
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
    this.port.onmessage = (event) => {
      if (event.data === "flush") this.flush(true);
    };
  }

  flush(final) {
    const samples = this.frame.slice(0, this.filled);
    const rms = this.filled ? Math.sqrt(this.sumSquares / this.filled) : 0;
    this.port.postMessage({ pcm: samples.buffer, rms, final }, [samples.buffer]);
    this.filled = 0;
    this.sumSquares = 0;
  }

  process(inputs) {
    const channels = inputs[0];
    if (channels && channels.length) {
      // Down-mix to mono.
      const mono = new Float32Array(channels[0].length);
      for (const channel of channels) {
        for (let i = 0; i < channel.length; i++) mono[i] += channel[i] / channels.length;
      }
      for (const s of this.resampler.push(mono)) {
        const clipped = Math.max(-1, Math.min(1, s));
        this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
        this.sumSquares += clipped * clipped;
        if (this.filled === FRAME_SAMPLES) this.flush(false);
      }
    }
    return true;
  }
}

registerProcessor("capture-processor", CaptureProcessor);

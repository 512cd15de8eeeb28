// <honnin-liveness>: honnin's face liveness capture component.
//
// A dependency-free ES module. It opens the camera, lets the user choose it, asks for
// consent before the colour flashes, streams JPEG frames to a honnin server over a
// WebSocket and follows the server's instructions (oval, guidance, colours) exactly as
// docs/liveness-protocol.md describes (protocol version 1).
//
//   <script type="module" src="/static/honnin-liveness.js"></script>
//   <honnin-liveness session-id="…" client-token="…" [server="…"] [stream-path="…"]>
//   </honnin-liveness>
//
// Attributes: session-id and client-token (from your backend, which created the session
// with its API key); server: the honnin base URL (default: this page's origin; http(s)
// becomes ws(s)); stream-path: default /v1/liveness/sessions/{session-id}/stream.
//
// Events (bubbling, composed):
//   honnin-liveness-complete  detail {sessionId, status: 'SUCCEEDED'|'FAILED', reason}
//   honnin-liveness-error     detail {sessionId, code, message, retryable}
//     (retryable: the camera failed before the stream started; the component offers
//     "Try again" and the session is still unused. Otherwise create a new session.)
// The `oncomplete` property, when a function, is called with the same detail.
// The `data-stage` attribute tells where the component is: camera, warning, fitting,
// colors, processing, done, error.
//
// The component never learns whether the person was judged live: only your backend reads
// the result, with its API key.

const VERSION = '1.0.0';
const CLIENT_NAME = 'honnin-liveness';
const TARGET_FPS = 15;
// Frames closer together than this are skipped: 30-fps cameras send every second frame
// (15 fps); cameras at 15–25 fps send every frame.
const MIN_FRAME_GAP_MS = 40;
const JPEG_QUALITY = 0.8;
const MAX_FRAME_BYTES = 512 * 1024;
// Skip frames while this much is still queued in the socket (a slow uplink).
const MAX_BUFFERED_BYTES = 256 * 1024;
const CHALLENGE_TIMEOUT_MS = 15000;
const COMPLETE_TIMEOUT_MS = 60000;
const ANNOUNCE_INTERVAL_MS = 1500;

const GUIDANCE_FALLBACK = {
  NO_FACE: 'We cannot see a face. Look at the screen.',
  MULTIPLE_FACES: 'Only one person should be in view.',
  MOVE_CLOSER: 'Move closer.',
  TOO_CLOSE: 'Move back a little.',
  CENTER_FACE: 'Center your face in the oval.',
  HOLD_STILL: 'Hold still.',
  FACE_IN_OVAL: 'Good. Hold still.',
};

// What the user reads for each error code (server codes and the component's own).
const ERROR_TEXT = {
  CameraDenied: ['Camera access denied',
    'This check needs your camera. Allow camera access for this site in your browser settings, then try again.'],
  NoCamera: ['No camera found', 'Connect a camera (or close other apps that use it) and try again.'],
  CameraUnavailable: ['The camera could not start',
    'Another application may be using the camera. Close it and try again.'],
  Unsupported: ['Camera not available in this browser',
    'Use a recent version of Chrome, Edge, Firefox or Safari, on a secure (https) page.'],
  MissingSession: ['The check is not set up', 'This page did not provide a session. Start again.'],
  ConnectFailed: ['Could not connect',
    'The server could not be reached, or this session has expired or was already used. Start again.'],
  NetworkError: ['Connection lost', 'The connection to the server was lost. Check your connection and start again.'],
  Timeout: ['Timed out', 'The check took too long. Start again, with your face in the oval.'],
  SessionExpired: ['Session expired', 'This session has expired. Start again.'],
  Interrupted: ['Check interrupted', 'The page was hidden during the check. Start again and keep this page open.'],
  InvalidMessage: ['Something went wrong', 'The server did not understand this device. Start again.'],
  ProtocolViolation: ['Something went wrong', 'The server rejected this device’s data. Start again.'],
  FrameTooLarge: ['Something went wrong', 'The camera images were too large. Start again.'],
  InvalidFrame: ['Something went wrong', 'The camera images could not be read. Start again.'],
  TooManyFrames: ['Something went wrong', 'Too many camera images were sent. Start again.'],
};

const STYLE = `
:host {
  --honnin-accent: #1a56db;
  --honnin-accent-text: #fff;
  --honnin-ok: #188038;
  --honnin-warn: #e8a100;
  --honnin-bad: #d93025;
  --honnin-text: #1f2328;
  --honnin-muted: #57606a;
  --honnin-bg: #fff;
  display: block;
  color: var(--honnin-text);
  font: 1rem/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  -webkit-text-size-adjust: 100%;
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.card {
  max-width: 40rem;
  margin: 0 auto;
  padding: 1rem;
  background: var(--honnin-bg);
  border-radius: 12px;
}
h2 { font-size: 1.3rem; line-height: 1.25; margin: 0 0 .5rem; }
h2:focus { outline: none; }
p { margin: .5rem 0; }
ul { margin: .5rem 0; padding-left: 1.25rem; }
.step { color: var(--honnin-muted); font-size: .875rem; margin: 0 0 .25rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: 1rem; }
button {
  font: inherit;
  min-height: 44px;
  padding: .5rem 1.25rem;
  border-radius: 8px;
  border: 2px solid var(--honnin-accent);
  background: var(--honnin-accent);
  color: var(--honnin-accent-text);
  cursor: pointer;
}
button.secondary { background: transparent; color: var(--honnin-accent); }
button:disabled { opacity: .5; cursor: default; }
button:focus-visible, select:focus-visible { outline: 3px solid var(--honnin-accent); outline-offset: 2px; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
select {
  font: inherit;
  width: 100%;
  min-height: 44px;
  padding: .25rem .5rem;
  border: 1px solid #8c959f;
  border-radius: 8px;
  background: #fff;
  color: inherit;
}
.preview {
  --vw: 4; --vh: 3;
  position: relative;
  aspect-ratio: var(--vw) / var(--vh);
  width: min(100%, calc(58vh * var(--vw) / var(--vh)));
  width: min(100%, calc(58dvh * var(--vw) / var(--vh)));
  margin: .75rem auto 0;
  overflow: hidden;
  border-radius: 12px;
  background: #111;
  forced-color-adjust: none;
}
/* While choosing the camera, a smaller preview keeps Continue on a phone's screen. */
:host([data-stage="camera"]) .preview {
  width: min(100%, calc(30vh * var(--vw) / var(--vh)));
  width: min(100%, calc(30dvh * var(--vw) / var(--vh)));
}
.preview video, .preview svg {
  position: absolute;
  inset: 0;
  width: 100%;
  height: 100%;
  transform: scaleX(-1);
}
.preview video { object-fit: cover; }
.dim { fill: rgba(0, 0, 0, .55); fill-rule: evenodd; }
.oval { fill: none; stroke: #fff; stroke-width: 4px; vector-effect: non-scaling-stroke; transition: stroke .2s; }
.oval[data-fit="ok"] { stroke: var(--honnin-ok); stroke-width: 6px; }
.oval[data-fit="adjust"] { stroke: var(--honnin-warn); }
.oval[data-fit="bad"] { stroke: var(--honnin-bad); }
.face { fill: none; stroke: rgba(255, 255, 255, .8); stroke-width: 2px; stroke-dasharray: 6 4; vector-effect: non-scaling-stroke; }
.guidance {
  min-height: 2.9em;
  margin: .75rem 0 0;
  padding: .5rem .75rem;
  border-radius: 8px;
  border-left: 6px solid #8c959f;
  background: #f3f4f6;
  font-weight: 600;
}
.guidance[data-fit="ok"] { border-left-color: var(--honnin-ok); }
.guidance[data-fit="adjust"] { border-left-color: var(--honnin-warn); }
.guidance[data-fit="bad"] { border-left-color: var(--honnin-bad); }
.warning-box {
  border: 2px solid var(--honnin-warn);
  background: #fff8e1;
  border-radius: 8px;
  padding: .75rem 1rem;
}
.error-box { border-left: 6px solid var(--honnin-bad); background: #fdecea; border-radius: 8px; padding: .75rem 1rem; }
.code { color: var(--honnin-muted); font-size: .8rem; }
.spinner {
  width: 48px; height: 48px; margin: 1.5rem auto;
  border: 5px solid #d0d7de; border-top-color: var(--honnin-accent); border-radius: 50%;
  animation: spin 1s linear infinite;
}
@keyframes spin { to { transform: rotate(360deg); } }
.flash {
  position: fixed;
  inset: 0;
  width: 100vw;
  height: 100vh;
  height: 100dvh;
  z-index: 2147483647;
  display: flex;
  flex-direction: column;
  align-items: center;
  justify-content: flex-end;
  padding: 1.5rem 1rem calc(1.5rem + env(safe-area-inset-bottom));
  background: #000;
  /* High-contrast modes must not replace the colours of the challenge. */
  forced-color-adjust: none;
}
.flash:focus { outline: none; }
.flash-info { text-align: center; font-weight: 600; font-size: 1.1rem; max-width: 30rem; width: 100%; }
.flash progress { width: 100%; height: 10px; margin-top: .5rem; accent-color: currentColor; }
.sr-only {
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
@media (max-width: 480px) {
  .card { padding: .75rem; border-radius: 0; }
  .actions button { flex: 1 1 100%; }
}
@media (prefers-reduced-motion: reduce) {
  .spinner { animation-duration: 4s; }
  .oval { transition: none; }
}
`;

// Styles go in a constructed style sheet where the browser has them: unlike a <style>
// element, it is allowed under a strict Content-Security-Policy (style-src 'self').
let sheet = null;
try {
  sheet = new CSSStyleSheet();
  sheet.replaceSync(STYLE);
} catch (_) {
  sheet = null;
}

const TEMPLATE = `
<div class="card" part="card">
  <section data-for="camera" aria-labelledby="h-camera">
    <p class="step">Step 1 of 3</p>
    <h2 id="h-camera" tabindex="-1">Get ready for a face check</h2>
    <p>We will check that you are a real person in front of the camera. It takes about 15 seconds.</p>
    <ul>
      <li>Find a well-lit place, without a bright light behind you.</li>
      <li>Remove sunglasses, masks or hats that hide your face.</li>
      <li>Turn your screen brightness up and hold the device at eye level.</li>
    </ul>
    <label for="camera-select">Camera</label>
    <select id="camera-select" disabled><option>Starting camera…</option></select>
  </section>

  <section data-for="warning" aria-labelledby="h-warning">
    <p class="step">Step 2 of 3</p>
    <h2 id="h-warning" tabindex="-1">Photosensitivity warning</h2>
    <div class="warning-box" id="warning-text">
      <p>During the check your screen will <strong>flash a sequence of bright colours</strong>.</p>
      <p>If you have photosensitive epilepsy, or flashing lights make you unwell, do not continue:
        ask for another way to verify your identity.</p>
    </div>
  </section>

  <section data-for="fitting" aria-labelledby="h-fitting">
    <p class="step">Step 3 of 3</p>
    <h2 id="h-fitting" tabindex="-1">Fit your face in the oval</h2>
    <p>Move closer until your face fills the oval, then hold still. Keep your face in the oval until the check ends.</p>
  </section>

  <section data-for="colors" aria-labelledby="h-colors">
    <h2 id="h-colors" tabindex="-1">Hold still</h2>
  </section>

  <section data-for="processing" aria-labelledby="h-processing">
    <h2 id="h-processing" tabindex="-1">Checking…</h2>
    <div class="spinner" aria-hidden="true"></div>
    <p>This takes a few seconds. Keep this page open.</p>
  </section>

  <section data-for="done" aria-labelledby="h-done">
    <h2 id="h-done" tabindex="-1">Thank you</h2>
    <p id="done-text">Your face check is complete.</p>
  </section>

  <section data-for="error" aria-labelledby="h-error">
    <h2 id="h-error" tabindex="-1">Something went wrong</h2>
    <div class="error-box" role="alert">
      <p id="error-text"></p>
      <p class="code" id="error-code"></p>
    </div>
  </section>

  <div class="preview" id="preview" hidden>
    <video id="video" autoplay muted playsinline aria-label="Camera preview"></video>
    <svg id="overlay" aria-hidden="true" preserveAspectRatio="xMidYMid slice" viewBox="0 0 4 3">
      <path class="dim" id="dim" d=""></path>
      <ellipse class="oval" id="oval" cx="0" cy="0" rx="0" ry="0" hidden></ellipse>
      <rect class="face" id="face" x="0" y="0" width="0" height="0" hidden></rect>
    </svg>
  </div>
  <p class="guidance" id="guidance" hidden></p>

  <div class="actions">
    <button type="button" id="camera-continue" data-for="camera" disabled>Continue</button>
    <button type="button" id="warning-accept" data-for="warning" aria-describedby="warning-text">I understand, start the check</button>
    <button type="button" id="warning-back" class="secondary" data-for="warning">Back</button>
    <button type="button" id="retry" data-for="error" hidden>Try again</button>
  </div>

  <div class="sr-only" role="status" aria-live="polite" aria-atomic="true" id="live"></div>
</div>
<div class="flash" id="flash" tabindex="-1" role="dialog" aria-modal="true" aria-labelledby="flash-text" hidden>
  <div class="flash-info">
    <p id="flash-text">Hold still</p>
    <progress id="flash-progress" max="1" value="0" aria-label="Colours shown"></progress>
  </div>
</div>
`;

const now = () => performance.timeOrigin + performance.now();

function fitOf(code) {
  if (code === 'FACE_IN_OVAL') return 'ok';
  if (code === 'NO_FACE' || code === 'MULTIPLE_FACES') return 'bad';
  return 'adjust';
}

class HonninLiveness extends HTMLElement {
  static get observedAttributes() { return ['session-id', 'client-token', 'server', 'stream-path']; }

  #root;
  #el = {};
  #initialized = false;
  #stage = '';
  #oncomplete = null;
  #cameraToken = 0;
  #mediaStream = null;
  #cameraLabel = '';
  #ws = null;
  #wsOpened = false;
  #finished = false;
  #streamStarted = false;
  #challenge = null;
  #size = null;
  #canvas = null;
  #ctx = null;
  #capturing = false;
  #encoding = false;
  #lastFrameT = -Infinity;
  #lastRvfcAt = -Infinity;
  #useCaptureTime = null;
  #watchdog = 0;
  #timers = new Set();
  #faceInOvalSent = false;
  #lastGuidance = '';
  #lastAnnounceAt = -Infinity;
  #pendingAnnounce = 0;
  #wakeLock = null;
  #stats = { framesSent: 0, framesSkipped: 0, bytesSent: 0, colorsShown: 0, clock: '' };
  #onVisibility = () => {
    if (document.hidden && (this.#stage === 'fitting' || this.#stage === 'colors')) {
      this.#fail('Interrupted');
    }
  };

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
  }

  /** Called with {sessionId, status, reason} when the session completes. */
  get oncomplete() { return this.#oncomplete; }
  set oncomplete(fn) { this.#oncomplete = typeof fn === 'function' ? fn : null; }

  /** The current stage (also reflected in the data-stage attribute). */
  get stage() { return this.#stage; }

  /** Diagnostics: frames sent and skipped, bytes sent, colours shown, and the frame
   * clock ('captureTime' from requestVideoFrameCallback, or 'now'). */
  get stats() { return { ...this.#stats }; }

  get sessionId() { return this.getAttribute('session-id') || ''; }

  connectedCallback() {
    if (this.#initialized) return; // moved within the page: keep going
    this.#initialized = true;
    this.#reset();
    if (sheet && 'adoptedStyleSheets' in this.#root) {
      this.#root.adoptedStyleSheets = [sheet];
      this.#root.innerHTML = TEMPLATE;
    } else {
      this.#root.innerHTML = `<style>${STYLE}</style>${TEMPLATE}`;
    }
    for (const el of this.#root.querySelectorAll('[id]')) this.#el[el.id] = el;
    this.#el['camera-select'].addEventListener('change', (e) => this.#openCamera(e.target.value));
    this.#el['camera-continue'].addEventListener('click', () => this.#setStage('warning'));
    this.#el['warning-back'].addEventListener('click', () => this.#setStage('camera'));
    this.#el['warning-accept'].addEventListener('click', () => this.#beginStream());
    this.#el.retry.addEventListener('click', () => this.#openCamera(''));
    document.addEventListener('visibilitychange', this.#onVisibility);
    this.#openCamera('');
  }

  disconnectedCallback() {
    // Moving the element fires disconnected then connected at once: only a removal that
    // lasts stops the camera and the stream.
    queueMicrotask(() => {
      if (this.isConnected) return;
      document.removeEventListener('visibilitychange', this.#onVisibility);
      this.#teardown();
      this.#initialized = false;
    });
  }

  #reset() {
    this.#stage = '';
    this.#finished = false;
    this.#streamStarted = false;
    this.#wsOpened = false;
    this.#challenge = null;
    this.#faceInOvalSent = false;
    this.#lastGuidance = '';
    this.#lastFrameT = -Infinity;
    this.#lastRvfcAt = -Infinity;
    this.#useCaptureTime = null;
    this.#stats = { framesSent: 0, framesSkipped: 0, bytesSent: 0, colorsShown: 0, clock: '' };
  }

  /** Stops the camera and closes the connection, without an event. */
  cancel() { this.#teardown(); }

  // ---------------------------------------------------------------- stages and UI

  #setStage(stage) {
    if (this.#stage === stage) return;
    this.#stage = stage;
    this.dataset.stage = stage;
    for (const el of this.#root.querySelectorAll('[data-for]')) {
      el.hidden = el.dataset.for !== stage;
    }
    const showPreview = stage === 'camera' || stage === 'fitting' || stage === 'colors';
    this.#el.preview.hidden = !showPreview;
    this.#el.guidance.hidden = stage !== 'fitting' && stage !== 'colors';
    this.#el.retry.hidden = !(stage === 'error' && !this.#streamStarted);
    this.#el.flash.hidden = stage !== 'colors';
    if (stage !== 'colors') this.#el.flash.style.background = '';
    const focus = stage === 'colors' ? this.#el.flash : this.#root.getElementById(`h-${stage}`);
    if (focus) focus.focus({ preventScroll: stage === 'colors' });
    if (stage !== 'colors' && stage !== 'fitting') this.scrollIntoView?.({ block: 'nearest' });
  }

  #announce(text, force) {
    const t = performance.now();
    clearTimeout(this.#pendingAnnounce);
    const say = () => {
      this.#lastAnnounceAt = performance.now();
      this.#el.live.textContent = text;
    };
    if (force || t - this.#lastAnnounceAt >= ANNOUNCE_INTERVAL_MS) say();
    else this.#pendingAnnounce = setTimeout(say, ANNOUNCE_INTERVAL_MS - (t - this.#lastAnnounceAt));
  }

  #setGuidance(text, fit) {
    const g = this.#el.guidance;
    g.textContent = text;
    if (fit) g.dataset.fit = fit; else delete g.dataset.fit;
  }

  #later(fn, ms) {
    const id = setTimeout(() => { this.#timers.delete(id); fn(); }, ms);
    this.#timers.add(id);
    return id;
  }

  #clearTimers() {
    for (const id of this.#timers) clearTimeout(id);
    this.#timers.clear();
  }

  // ---------------------------------------------------------------- camera

  async #openCamera(deviceId) {
    if (this.#streamStarted) return;
    const token = ++this.#cameraToken;
    this.#setStage('camera');
    const select = this.#el['camera-select'];
    const cont = this.#el['camera-continue'];
    cont.disabled = true;
    this.#stopCamera();
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      this.#fail('Unsupported');
      return;
    }
    const video = deviceId
      ? { deviceId: { exact: deviceId }, width: { ideal: 640 }, height: { ideal: 480 } }
      : { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' };
    let stream;
    try {
      stream = await md.getUserMedia({ video, audio: false });
    } catch (e) {
      if (token !== this.#cameraToken) return;
      const name = e && e.name;
      if (name === 'NotAllowedError' || name === 'SecurityError' || name === 'PermissionDeniedError') {
        this.#fail('CameraDenied');
      } else if (name === 'NotFoundError' || name === 'DevicesNotFoundError' || name === 'OverconstrainedError') {
        this.#fail('NoCamera');
      } else {
        this.#fail('CameraUnavailable', e && e.message);
      }
      return;
    }
    if (token !== this.#cameraToken || !this.isConnected) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    this.#mediaStream = stream;
    const track = stream.getVideoTracks()[0];
    this.#cameraLabel = (track && track.label) || '';
    // Unplugged, or taken by the system (stop() by this component fires no 'ended').
    track?.addEventListener('ended', () => {
      if (this.#mediaStream === stream && !this.#finished) this.#fail('CameraUnavailable', 'The camera stopped.');
    });
    const v = this.#el.video;
    v.srcObject = stream;
    try { await v.play(); } catch (_) { /* autoplay of a muted stream is allowed; keep going */ }
    if (!v.videoWidth) {
      await new Promise((resolve) => {
        const done = () => { v.removeEventListener('loadedmetadata', done); v.removeEventListener('resize', done); resolve(); };
        v.addEventListener('loadedmetadata', done);
        v.addEventListener('resize', done);
        setTimeout(done, 5000);
      });
    }
    if (token !== this.#cameraToken) return;
    if (!v.videoWidth || !v.videoHeight) {
      this.#fail('CameraUnavailable', 'The camera sent no picture.');
      return;
    }
    this.#layoutPreview(v.videoWidth, v.videoHeight);
    // Labels are only readable once permission was granted, so list the cameras now.
    try {
      const devices = (await md.enumerateDevices()).filter((d) => d.kind === 'videoinput');
      if (token !== this.#cameraToken) return;
      const current = (track && track.getSettings && track.getSettings().deviceId) || deviceId;
      select.replaceChildren(...devices.map((d, i) => {
        const o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || `Camera ${i + 1}`;
        o.selected = d.deviceId === current;
        return o;
      }));
      select.disabled = devices.length < 2;
    } catch (_) {
      select.replaceChildren(new Option(this.#cameraLabel || 'Camera'));
      select.disabled = true;
    }
    cont.disabled = false;
    this.#announce('Camera ready. Press Continue when you are ready.', true);
  }

  #layoutPreview(w, h) {
    const p = this.#el.preview;
    p.style.setProperty('--vw', String(w));
    p.style.setProperty('--vh', String(h));
    this.#el.overlay.setAttribute('viewBox', `0 0 ${w} ${h}`);
    this.#el.dim.setAttribute('d', '');
  }

  #stopCamera() {
    if (this.#mediaStream) {
      this.#mediaStream.getTracks().forEach((t) => t.stop());
      this.#mediaStream = null;
    }
    if (this.#el.video) this.#el.video.srcObject = null;
  }

  // ---------------------------------------------------------------- the stream

  #streamUrl() {
    const id = this.getAttribute('session-id');
    const token = this.getAttribute('client-token');
    if (!id || !token) return null;
    const base = new URL(this.getAttribute('server') || location.origin, location.href);
    const scheme = { 'https:': 'wss:', 'http:': 'ws:' }[base.protocol] || base.protocol;
    const path = this.getAttribute('stream-path') || `/v1/liveness/sessions/${encodeURIComponent(id)}/stream`;
    const prefix = base.pathname.replace(/\/+$/, '');
    const url = new URL(`${scheme}//${base.host}${prefix}${path.startsWith('/') ? '' : '/'}${path}`);
    url.searchParams.set('token', token);
    return url.href;
  }

  #beginStream() {
    if (this.#streamStarted) return;
    const v = this.#el.video;
    if (!this.#mediaStream || !v.videoWidth) {
      this.#openCamera('');
      return;
    }
    const url = this.#streamUrl();
    if (!url) {
      this.#fail('MissingSession');
      return;
    }
    this.#streamStarted = true;
    this.#cameraToken++; // a late camera switch must not replace the stream now
    this.#size = { width: v.videoWidth, height: v.videoHeight };
    this.#canvas = document.createElement('canvas');
    this.#canvas.width = this.#size.width;
    this.#canvas.height = this.#size.height;
    this.#ctx = this.#canvas.getContext('2d', { alpha: false });
    this.#setStage('fitting');
    this.#setGuidance('Connecting…', null);
    this.#announce('Connecting. Then fit your face in the oval.', true);
    this.#requestWakeLock();

    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this.#fail('ConnectFailed', e && e.message);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.#ws = ws;
    ws.onopen = () => {
      this.#wsOpened = true;
      const start = {
        type: 'start',
        video: { ...this.#size },
        client: { name: CLIENT_NAME, version: VERSION },
      };
      if (this.#cameraLabel) start.camera = { label: this.#cameraLabel };
      this.#send(start);
      this.#later(() => { if (!this.#challenge) this.#fail('Timeout', 'No challenge from the server.'); }, CHALLENGE_TIMEOUT_MS);
    };
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') return;
      let msg;
      try { msg = JSON.parse(e.data); } catch (_) { return; }
      if (msg && typeof msg.type === 'string') this.#onMessage(msg);
    };
    ws.onclose = () => {
      if (this.#ws !== ws) return;
      this.#ws = null;
      if (!this.#finished) this.#fail(this.#wsOpened ? 'NetworkError' : 'ConnectFailed');
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  #send(obj) {
    const ws = this.#ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  #onMessage(msg) {
    if (this.#finished) return;
    switch (msg.type) {
      case 'challenge': return this.#onChallenge(msg);
      case 'guidance': return this.#onGuidance(msg);
      case 'color': return this.#onColor(msg);
      case 'stop': return this.#onStop();
      case 'complete': return this.#onComplete(msg);
      case 'error': return this.#fail(msg.code || 'ServerError', msg.message, true);
      default: return undefined; // unknown messages are ignored (forward compatibility)
    }
  }

  #onChallenge(msg) {
    if (this.#challenge) return;
    this.#challenge = msg;
    const { width: W, height: H } = this.#size;
    const o = msg.oval || { centerX: W / 2, centerY: H / 2, width: W * 0.5, height: H * 0.8 };
    const rx = o.width / 2;
    const ry = o.height / 2;
    const oval = this.#el.oval;
    oval.setAttribute('cx', o.centerX);
    oval.setAttribute('cy', o.centerY);
    oval.setAttribute('rx', rx);
    oval.setAttribute('ry', ry);
    oval.removeAttribute('hidden');
    // Everything outside the oval is dimmed: the frame minus the ellipse (even-odd).
    const pad = Math.max(W, H);
    this.#el.dim.setAttribute('d',
      `M${-pad},${-pad}H${W + pad}V${H + pad}H${-pad}Z`
      + `M${o.centerX - rx},${o.centerY}a${rx},${ry} 0 1,0 ${2 * rx},0a${rx},${ry} 0 1,0 ${-2 * rx},0Z`);
    this.#colorCount = Number(msg.colorCount) || 0;
    this.#setGuidance('Fit your face in the oval.', 'adjust');
    this.#announce('Fit your face in the oval.', true);
    const fps = Math.max(TARGET_FPS, Number(msg.minFrameRate) || 0);
    this.#minGap = Math.min(MIN_FRAME_GAP_MS, 600 / fps);
    this.#startFrames();
  }

  #colorCount = 0;
  #minGap = MIN_FRAME_GAP_MS;

  #onGuidance(msg) {
    const code = String(msg.code || '');
    const text = msg.message || GUIDANCE_FALLBACK[code] || code;
    const fit = fitOf(code);
    this.#el.oval.dataset.fit = fit;
    this.#setGuidance(text, fit);
    const face = this.#el.face;
    const f = msg.face;
    if (f && [f.left, f.top, f.width, f.height].every(Number.isFinite)) {
      face.setAttribute('x', f.left);
      face.setAttribute('y', f.top);
      face.setAttribute('width', f.width);
      face.setAttribute('height', f.height);
      face.removeAttribute('hidden');
    } else {
      face.setAttribute('hidden', '');
    }
    if (code !== this.#lastGuidance) {
      this.#lastGuidance = code;
      if (this.#stage === 'fitting') this.#announce(text);
    }
    if (code === 'FACE_IN_OVAL' && !this.#faceInOvalSent) {
      this.#faceInOvalSent = true;
      this.#send({ type: 'faceInOval', t: now() });
    }
  }

  #onColor(msg) {
    const rgb = Array.isArray(msg.rgb) ? msg.rgb : [0, 0, 0];
    const [r, g, b] = rgb.map((c) => Math.max(0, Math.min(255, Number(c) || 0)));
    const seq = msg.seq;
    this.#setStage('colors');
    const flash = this.#el.flash;
    flash.style.background = `rgb(${r}, ${g}, ${b})`;
    // Readable text on any colour (relative luminance).
    const lum = (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    flash.style.color = lum > 0.5 ? '#000' : '#fff';
    const total = Math.max(this.#colorCount, (Number(seq) || 0) + 1);
    const done = (Number(seq) || 0) + 1;
    this.#el['flash-text'].textContent = `Hold still. Colour ${done} of ${total}`;
    const p = this.#el['flash-progress'];
    p.max = total;
    p.value = done;
    if (done === 1) this.#announce(`The colours have started. Hold still. ${total} colours.`, true);
    // The first animation frame after the colour was set is when it is on screen.
    requestAnimationFrame((ts) => {
      if (this.#finished || this.#stage !== 'colors') return;
      this.#stats.colorsShown++;
      this.#send({ type: 'colorDisplayed', seq, rgb: msg.rgb, t: performance.timeOrigin + ts });
    });
  }

  #onStop() {
    this.#stopFrames();
    this.#send({ type: 'end', t: now() });
    this.#setStage('processing');
    this.#announce('Capture finished. Checking.', true);
    this.#stopCamera();
    this.#later(() => this.#fail('Timeout', 'No result from the server.'), COMPLETE_TIMEOUT_MS);
  }

  #onComplete(msg) {
    const status = msg.status === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED';
    const detail = { sessionId: this.sessionId, status, reason: msg.reason ?? null };
    this.#finished = true;
    this.#teardown();
    this.#el['h-done'].textContent = status === 'SUCCEEDED' ? 'Thank you' : 'The check could not be completed';
    this.#el['done-text'].textContent = status === 'SUCCEEDED'
      ? 'Your face check is complete.'
      : `The check could not be analysed${msg.reason ? ` (${msg.reason})` : ''}. You may need to start again.`;
    this.#setStage('done');
    this.#announce(this.#el['h-done'].textContent, true);
    this.dispatchEvent(new CustomEvent('honnin-liveness-complete', { detail, bubbles: true, composed: true }));
    if (this.#oncomplete) {
      try { this.#oncomplete.call(this, detail); } catch (e) { setTimeout(() => { throw e; }); }
    }
  }

  #fail(code, message, fromServer) {
    if (this.#finished) return;
    const known = ERROR_TEXT[code];
    const [title, text] = known || ['Something went wrong', message || 'Start again.'];
    const wasStreaming = this.#streamStarted;
    if (wasStreaming) this.#finished = true;
    this.#teardown();
    this.#el['h-error'].textContent = title;
    this.#el['error-text'].textContent = text;
    this.#el['error-code'].textContent = `Error code: ${code}${fromServer && message && known ? ` (${message})` : ''}`;
    this.#setStage('error');
    // retryable: the stream had not started, so this session can still be used (the
    // component shows "Try again"); otherwise the host must create a new session.
    const detail = { sessionId: this.sessionId, code, message: message || text, retryable: !wasStreaming };
    this.dispatchEvent(new CustomEvent('honnin-liveness-error', { detail, bubbles: true, composed: true }));
  }

  // ---------------------------------------------------------------- frames

  #startFrames() {
    this.#capturing = true;
    const v = this.#el.video;
    if (typeof v.requestVideoFrameCallback === 'function') {
      const onFrame = (_now, meta) => {
        if (!this.#capturing) return;
        this.#lastRvfcAt = performance.now();
        this.#captureFrame(meta && meta.captureTime);
        v.requestVideoFrameCallback(onFrame);
      };
      v.requestVideoFrameCallback(onFrame);
    }
    // Without requestVideoFrameCallback, or while it does not fire, capture on a timer.
    this.#watchdog = setInterval(() => {
      if (performance.now() - this.#lastRvfcAt > 250) this.#captureFrame(undefined);
    }, 1000 / TARGET_FPS);
  }

  #stopFrames() {
    this.#capturing = false;
    clearInterval(this.#watchdog);
    this.#watchdog = 0;
  }

  #captureFrame(captureTime) {
    const ws = this.#ws;
    if (!this.#capturing || !ws || ws.readyState !== WebSocket.OPEN || this.#encoding) return;
    const wall = performance.now();
    // The camera's capture time is on the performance.now() clock; trust it if it is sane.
    if (this.#useCaptureTime === null && Number.isFinite(captureTime) && captureTime > 0) {
      this.#useCaptureTime = Math.abs(wall - captureTime) < 1000;
    }
    this.#stats.clock = this.#useCaptureTime ? 'captureTime' : 'now';
    const t = performance.timeOrigin
      + (this.#useCaptureTime && Number.isFinite(captureTime) && captureTime > 0 ? captureTime : wall);
    if (t - this.#lastFrameT < this.#minGap) return;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.#stats.framesSkipped++;
      return;
    }
    const { width, height } = this.#size;
    const v = this.#el.video;
    if (v.readyState < 2) return;
    this.#lastFrameT = t;
    this.#encoding = true;
    this.#ctx.drawImage(v, 0, 0, width, height);
    this.#encode(JPEG_QUALITY)
      .then(async (blob) => {
        if (blob && blob.size > MAX_FRAME_BYTES) blob = await this.#encode(0.5);
        if (!blob || blob.size > MAX_FRAME_BYTES || !this.#capturing) return;
        const jpeg = new Uint8Array(await blob.arrayBuffer());
        if (!this.#capturing || this.#ws !== ws || ws.readyState !== WebSocket.OPEN) return;
        const msg = new Uint8Array(8 + jpeg.byteLength);
        new DataView(msg.buffer).setFloat64(0, t, true);
        msg.set(jpeg, 8);
        ws.send(msg.buffer);
        this.#stats.framesSent++;
        this.#stats.bytesSent += msg.byteLength;
      })
      .catch(() => { this.#stats.framesSkipped++; })
      .finally(() => { this.#encoding = false; });
  }

  #encode(quality) {
    return new Promise((resolve) => this.#canvas.toBlob(resolve, 'image/jpeg', quality));
  }

  // ---------------------------------------------------------------- cleanup

  async #requestWakeLock() {
    try {
      if (navigator.wakeLock) this.#wakeLock = await navigator.wakeLock.request('screen');
    } catch (_) { /* not available or refused: only a convenience */ }
  }

  #teardown() {
    this.#stopFrames();
    this.#clearTimers();
    clearTimeout(this.#pendingAnnounce);
    this.#cameraToken++;
    this.#stopCamera();
    const ws = this.#ws;
    this.#ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) {
      try { ws.close(1000); } catch (_) { /* already closing */ }
    }
    if (this.#wakeLock) {
      this.#wakeLock.release().catch(() => {});
      this.#wakeLock = null;
    }
    if (this.#el.flash) {
      this.#el.flash.hidden = true;
      this.#el.flash.style.background = '';
    }
  }
}

if (!customElements.get('honnin-liveness')) {
  customElements.define('honnin-liveness', HonninLiveness);
}

export { HonninLiveness };

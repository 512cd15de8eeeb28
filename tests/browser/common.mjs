// Helpers shared by the real-browser tests (liveness.mjs, verify.mjs): assertions,
// logging, Chromium's fake-camera flags, a page that records the <honnin-liveness>
// component's stages and events, stage waits and screenshots.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const STAGE_TIMEOUT_MS = 30_000;

export class TestFailure extends Error {}
export function check(cond, message) {
  if (!cond) throw new TestFailure(message);
}

export function log(...a) {
  console.log(`[browser ${new Date().toISOString().slice(11, 19)}]`, ...a);
}

export function makeVideo(sourceVideo) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'honnin-camera-'));
  const out = path.join(dir, 'camera.y4m');
  const r = spawnSync('ffmpeg', ['-loglevel', 'error', '-y', '-i', sourceVideo, '-t', '20',
    '-vf', 'scale=360:-2,fps=15', '-pix_fmt', 'yuv420p', out], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`ffmpeg failed to make ${out} (is ffmpeg installed?)`);
  return { file: out, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

export function launchArgs(video, fakeUi) {
  return [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream',
    ...(fakeUi ? ['--use-fake-ui-for-media-stream'] : ['--deny-permission-prompts']),
    `--use-file-for-fake-video-capture=${video}`,
  ];
}

// Records every data-stage the component goes through and its events, from page start.
export const INIT_SCRIPT = () => {
  window.__stages = [];
  window.__events = [];
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target.localName === 'honnin-liveness') {
        const s = r.target.getAttribute('data-stage');
        if (window.__stages[window.__stages.length - 1] !== s) window.__stages.push(s);
      }
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-stage'] });
  for (const type of ['honnin-liveness-complete', 'honnin-liveness-error']) {
    document.addEventListener(type, (e) => window.__events.push({ type, detail: e.detail }));
  }
};

export async function newPage(browser, viewport, mobile, runLog) {
  const context = await browser.newContext({
    viewport,
    deviceScaleFactor: 1,
    isMobile: mobile,
    hasTouch: mobile,
  });
  const page = await context.newPage();
  page.on('console', (m) => runLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => runLog.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => runLog.push(`requestfailed: ${r.url()} ${r.failure()?.errorText}`));
  await page.addInitScript(INIT_SCRIPT);
  return { context, page };
}

export async function waitStage(page, stages, timeout = STAGE_TIMEOUT_MS) {
  const list = Array.isArray(stages) ? stages : [stages];
  try {
    await page.waitForFunction((l) => {
      const el = document.querySelector('honnin-liveness');
      return el && (l.includes(el.dataset.stage) || el.dataset.stage === 'error');
    }, list, { timeout, polling: 50 });
  } catch (_) {
    const now = await page.evaluate(() => document.querySelector('honnin-liveness')?.dataset.stage);
    throw new TestFailure(`timed out after ${timeout} ms waiting for stage ${list.join('|')} (stage is ${now})`);
  }
  const stage = await page.evaluate(() => document.querySelector('honnin-liveness').dataset.stage);
  if (stage === 'error' && !list.includes('error')) {
    const text = await page.evaluate(() => {
      const r = document.querySelector('honnin-liveness').shadowRoot;
      return `${r.getElementById('h-error').textContent}: ${r.getElementById('error-text').textContent} ${r.getElementById('error-code').textContent}`;
    });
    throw new TestFailure(`the component reached the error stage instead of ${list.join('|')}: ${text}`);
  }
  return stage;
}

export async function shot(page, dir, name, fullPage = false) {
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  log(`screenshot ${path.relative(process.cwd(), file)}`);
}

export function redact(result) {
  return JSON.parse(JSON.stringify(result, (k, v) => (k === 'bytes' && typeof v === 'string' ? `<${v.length} base64 chars>` : v)));
}

/// Runs the component from its first screen to `done`: camera, photosensitivity warning,
/// oval, colours. Screenshots NN-stage.png into `dir`, numbered from `first`.
export async function runComponent(page, dir, first = 1) {
  const n = (i) => String(first + i).padStart(2, '0');
  await waitStage(page, 'camera');
  const cont = page.locator('honnin-liveness #camera-continue');
  await cont.waitFor({ state: 'visible' });
  await page.waitForFunction(() => {
    const el = document.querySelector('honnin-liveness');
    return el.dataset.stage !== 'camera' || !el.shadowRoot.getElementById('camera-continue').disabled;
  }, null, { timeout: STAGE_TIMEOUT_MS });
  await waitStage(page, 'camera');
  await shot(page, dir, `${n(0)}-camera`);
  await cont.click();
  await waitStage(page, 'warning');
  await shot(page, dir, `${n(1)}-warning`);
  await page.locator('honnin-liveness #warning-accept').click();
  await waitStage(page, ['fitting', 'colors', 'processing', 'done']);
  await shot(page, dir, `${n(2)}-fitting`);
  const colorsStage = await waitStage(page, ['colors', 'processing', 'done'], 60_000);
  if (colorsStage === 'colors') {
    await page.waitForFunction(() => {
      const el = document.querySelector('honnin-liveness');
      return el.dataset.stage !== 'colors' || el.stats.colorsShown >= 2;
    }, null, { timeout: 20_000, polling: 50 }).catch(() => {});
  }
  await shot(page, dir, `${n(3)}-colors`);
}

#!/usr/bin/env node
// Real-browser end-to-end test of the <honnin-liveness> component against a running
// `honnin serve` with the demo enabled. Driven by .ci/browser.sh; can run alone:
//
//   node tests/browser/liveness.mjs --base-url http://127.0.0.1:8080 \
//       [--video camera.y4m] [--out target/ci-artifacts/browser] [--runs phone,desktop,denied]
//
// Chromium (Debian's /usr/bin/chromium, or CHROMIUM=path) gets a fake camera that plays a
// pre-recorded video of a real person (../shared/data/replay/person1-live.mp4, converted
// to Y4M with ffmpeg if --video is not given). A recording cannot answer the colour
// challenge, so the session must complete (SUCCEEDED: the analysis ran) with a LOW
// confidence. Runs:
//   phone    390x844, touch: the whole flow, every stage screenshotted, result asserted
//   desktop  1280x800: the same flow
//   denied   camera permission refused: the component must show its CameraDenied error
// Screenshots go to <out>/<run>/NN-stage.png. Exit code 0 = passed (or skipped because
// ../shared/data is missing and HONNIN_REQUIRE_DATA is not 1), 1 = failed.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  STAGE_TIMEOUT_MS, TestFailure, check, launchArgs, log, makeVideo, newPage, redact, shot, waitStage,
} from './common.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const DATA = process.env.HONNIN_SHARED_DATA || path.resolve(REPO, '../shared/data');
const SOURCE_VIDEO = path.join(DATA, 'replay/person1-live.mp4');
const RESULT_TIMEOUT_MS = 120_000;
const DEFAULT_LIVE_THRESHOLD = 50;

function parseArgs(argv) {
  const args = {
    baseUrl: process.env.HONNIN_BASE_URL || '',
    video: process.env.HONNIN_FAKE_VIDEO || '',
    out: process.env.HONNIN_SCREENSHOTS || path.join(REPO, 'target/ci-artifacts/browser'),
    runs: (process.env.HONNIN_BROWSER_RUNS || 'phone,desktop,denied').split(','),
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--base-url') args.baseUrl = v();
    else if (a === '--video') args.video = v();
    else if (a === '--out') args.out = v();
    else if (a === '--runs') args.runs = v().split(',');
    else if (a === '--chromium') args.chromium = v();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.baseUrl) throw new Error('--base-url (or HONNIN_BASE_URL) is required');
  args.baseUrl = args.baseUrl.replace(/\/+$/, '');
  return args;
}

function liveThreshold(result) {
  const candidates = [result.liveThreshold, result.threshold, result.signals?.liveThreshold,
    result.signals?.threshold, result.signals?.confidenceThreshold];
  const t = candidates.find((x) => typeof x === 'number' && Number.isFinite(x));
  return t ?? DEFAULT_LIVE_THRESHOLD;
}


async function fullFlow(browser, args, run, viewport, mobile) {
  const dir = path.join(args.out, run);
  fs.mkdirSync(dir, { recursive: true });
  const runLog = [];
  const { context, page } = await newPage(browser, viewport, mobile, runLog);
  try {
    await page.goto(`${args.baseUrl}/demo/liveness`, { waitUntil: 'load' });
    await page.locator('#start').waitFor({ state: 'visible' });
    await page.waitForFunction(() => customElements.get('honnin-liveness'), null, { timeout: 10_000 })
      .catch(() => { throw new TestFailure('the component script /static/honnin-liveness.js did not define <honnin-liveness>'); });
    await shot(page, dir, '01-start');

    await page.click('#start');
    await waitStage(page, 'camera');
    const cont = page.locator('honnin-liveness #camera-continue');
    await cont.waitFor({ state: 'visible' });
    await page.waitForFunction(() => {
      const el = document.querySelector('honnin-liveness');
      return el.dataset.stage !== 'camera' || !el.shadowRoot.getElementById('camera-continue').disabled;
    }, null, { timeout: STAGE_TIMEOUT_MS });
    await waitStage(page, 'camera');
    await shot(page, dir, '01b-camera');
    await cont.click();

    await waitStage(page, 'warning');
    await shot(page, dir, '02-warning');
    await page.locator('honnin-liveness #warning-accept').click();

    await waitStage(page, ['fitting', 'colors', 'processing', 'done']);
    // Wait for the oval (the challenge) and a first guidance message, if fitting lasts.
    await page.waitForFunction(() => {
      const el = document.querySelector('honnin-liveness');
      const r = el.shadowRoot;
      return el.dataset.stage !== 'fitting'
        || (!r.getElementById('oval').hasAttribute('hidden') && r.getElementById('guidance').dataset.fit
          && r.getElementById('guidance').textContent !== 'Fit your face in the oval.');
    }, null, { timeout: STAGE_TIMEOUT_MS, polling: 50 }).catch(() => {});
    await shot(page, dir, '03-fitting');

    const colorsStage = await waitStage(page, ['colors', 'processing', 'done'], 60_000);
    if (colorsStage === 'colors') {
      // Let a colour or two go by so the screenshot shows one mid-sequence.
      await page.waitForFunction(() => {
        const el = document.querySelector('honnin-liveness');
        return el.dataset.stage !== 'colors' || el.stats.colorsShown >= 2;
      }, null, { timeout: 20_000, polling: 50 }).catch(() => {});
    }
    await shot(page, dir, '04-colors');

    try {
      await page.waitForFunction(() => document.body.dataset.result, null, { timeout: RESULT_TIMEOUT_MS });
    } catch (_) {
      throw new TestFailure(`no result on the page within ${RESULT_TIMEOUT_MS / 1000} s`);
    }
    await page.waitForTimeout(300); // images decode
    await shot(page, dir, '05-result', true);

    const state = await page.evaluate(() => {
      const el = document.querySelector('honnin-liveness');
      return {
        stage: el?.dataset.stage,
        stats: el?.stats,
        stages: window.__stages,
        events: window.__events,
        pageResult: document.body.dataset.result,
        demo: window.honninDemo,
      };
    });
    const { result } = state.demo;
    log(`${run}: stages ${state.stages.join(' → ')}; component stats ${JSON.stringify(state.stats)}`);
    log(`${run}: result JSON:\n${JSON.stringify(result ? redact(result) : null, null, 2)}`);

    const err = state.events.find((e) => e.type === 'honnin-liveness-error');
    check(!err, `the component reported an error: ${JSON.stringify(err?.detail)}`);
    const done = state.events.find((e) => e.type === 'honnin-liveness-complete');
    check(done, 'no honnin-liveness-complete event');
    check(done.detail.status === 'SUCCEEDED',
      `the stream completed with status ${done.detail.status} (reason ${done.detail.reason})`);
    check(state.stage === 'done', `the component ended in stage ${state.stage}, not done`);
    for (const s of ['camera', 'warning', 'fitting', 'processing', 'done']) {
      check(state.stages.includes(s), `the component never showed stage ${s} (saw ${state.stages.join(', ')})`);
    }
    check(state.stats.framesSent >= 30, `only ${state.stats.framesSent} frames were sent`);
    check(result, 'the demo page has no result JSON');
    check(result.sessionId === done.detail.sessionId, 'the result is for another session');
    check(result.status === 'SUCCEEDED', `result status ${result.status}, expected SUCCEEDED`);
    check(state.stages.includes('colors') && state.stats.colorsShown > 0,
      'no colour of the light challenge was shown (FaceMovementAndLightChallenge was asked for)');
    check(typeof result.confidence === 'number', `confidence is ${result.confidence}, expected a number`);
    const threshold = liveThreshold(result);
    check(result.confidence < threshold,
      `confidence ${result.confidence} is not below the live threshold ${threshold}: a pre-recorded video must not pass the colour challenge`);
    check(result.decision !== 'live', `decision is ${result.decision} for a pre-recorded video`);
    check(state.pageResult === result.decision, `the page shows ${state.pageResult}, the result says ${result.decision}`);
    // The first read returned the images and deleted them: a second read has none.
    check(result.referenceImage && result.referenceImage.bytes, 'the first read of the results has no reference image');
    const again = await (await fetch(`${args.baseUrl}/demo/api/liveness-sessions/${encodeURIComponent(result.sessionId)}`)).json();
    check(again.status === 'SUCCEEDED' && again.confidence === result.confidence,
      `a second read changed the results: ${JSON.stringify(redact(again))}`);
    check(again.imagesDeleted === true && !again.referenceImage && (again.auditImages || []).length === 0,
      `the images survived the first read: ${JSON.stringify(redact(again))}`);
    log(`${run}: PASS — SUCCEEDED, confidence ${result.confidence} < ${threshold}, decision ${result.decision}`);
  } catch (e) {
    await shot(page, dir, 'failure', true).catch(() => {});
    if (runLog.length) console.error(`${run}: page log:\n  ${runLog.slice(-40).join('\n  ')}`);
    throw e;
  } finally {
    await context.close();
  }
}

async function deniedFlow(browser, args) {
  const dir = path.join(args.out, 'denied');
  fs.mkdirSync(dir, { recursive: true });
  const runLog = [];
  const { context, page } = await newPage(browser, { width: 390, height: 844 }, true, runLog);
  try {
    await page.goto(`${args.baseUrl}/demo/liveness`, { waitUntil: 'load' });
    await page.click('#start');
    await waitStage(page, 'error');
    const e = await page.evaluate(() => window.__events.find((x) => x.type === 'honnin-liveness-error'));
    await shot(page, dir, '01-camera-denied');
    check(e && e.detail.code === 'CameraDenied', `expected a CameraDenied error event, got ${JSON.stringify(e)}`);
    check(e.detail.retryable === true, 'a camera error before the stream must be retryable');
    const retry = await page.locator('honnin-liveness #retry').isVisible();
    check(retry, 'no "Try again" button after the camera was denied');
    log('denied: PASS — CameraDenied shown with a retry button');
  } catch (err) {
    if (runLog.length) console.error(`denied: page log:\n  ${runLog.slice(-40).join('\n  ')}`);
    throw err;
  } finally {
    await context.close();
  }
}

async function main() {
  const args = parseArgs(process.argv);
  let video = args.video ? { file: args.video, cleanup: () => {} } : null;
  if (!video) {
    if (!fs.existsSync(SOURCE_VIDEO)) {
      const msg = `${SOURCE_VIDEO} not found (the shared data folder is missing), so there is no camera video`;
      if (process.env.HONNIN_REQUIRE_DATA === '1') throw new TestFailure(`${msg}; HONNIN_REQUIRE_DATA=1 makes this a failure`);
      console.log(`SKIP: ${msg}`);
      return;
    }
    video = makeVideo(SOURCE_VIDEO);
  }
  check(fs.existsSync(video.file), `camera video ${video.file} does not exist`);
  check(fs.existsSync(args.chromium), `${args.chromium} not found: apt-get install -y chromium`);
  fs.mkdirSync(args.out, { recursive: true });
  const launch = (fakeUi) => chromium.launch({
    executablePath: args.chromium,
    headless: true,
    args: launchArgs(video.file, fakeUi),
  });
  try {
    const r = await fetch(`${args.baseUrl}/demo/liveness`).catch((e) => { throw new TestFailure(`${args.baseUrl} unreachable: ${e.message}`); });
    check(r.ok, `GET /demo/liveness answered ${r.status}: is the demo enabled (HONNIN_DEMO__ENABLED=true)?`);
    const browser = await launch(true);
    try {
      if (args.runs.includes('phone')) await fullFlow(browser, args, 'phone', { width: 390, height: 844 }, true);
      if (args.runs.includes('desktop')) await fullFlow(browser, args, 'desktop', { width: 1280, height: 800 }, false);
    } finally {
      await browser.close();
    }
    if (args.runs.includes('denied')) {
      const denied = await launch(false);
      try {
        await deniedFlow(denied, args);
      } finally {
        await denied.close();
      }
    }
  } finally {
    video.cleanup();
  }
  log(`all browser checks passed (${args.runs.join(', ')}); screenshots in ${args.out}`);
}

main().catch((e) => {
  console.error(`\nBROWSER TEST FAILED: ${e instanceof TestFailure ? e.message : e.stack || e}`);
  process.exit(1);
});

#!/usr/bin/env node
// Real-browser end-to-end test of the identity-verification demo (/demo/verify) against a
// running `honnin serve` with the demo enabled. Driven by .ci/browser.sh; can run alone:
//
//   node tests/browser/verify.mjs --base-url http://127.0.0.1:8080 --video camera.y4m \
//       [--document ../shared/data/id-documents/passport-td3.jpg] [--out DIR]
//
// The document is a specimen passport from ../shared/data/id-documents; the fake camera
// plays a recording of another, real person. The flow must run to a decision, and that
// decision must be complete and consistent: every step recorded with its score and
// threshold, the recording fails liveness, the document does not match the face, so the
// verification is not approved and nobody is enrolled. Screenshots of each step go to
// <out>/NN-step.png.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { TestFailure, check, launchArgs, log, newPage, redact, runComponent, shot } from './common.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const DATA = process.env.HONNIN_SHARED_DATA || path.resolve(REPO, '../shared/data');
const DECISION_TIMEOUT_MS = 120_000;

function parseArgs(argv) {
  const args = {
    baseUrl: process.env.HONNIN_BASE_URL || '',
    video: '',
    document: path.join(DATA, 'id-documents/passport-td3.jpg'),
    out: path.join(REPO, 'target/ci-artifacts/browser/verify'),
    chromium: process.env.CHROMIUM || '/usr/bin/chromium',
  };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--base-url') args.baseUrl = v();
    else if (a === '--video') args.video = v();
    else if (a === '--document') args.document = v();
    else if (a === '--out') args.out = v();
    else if (a === '--chromium') args.chromium = v();
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.baseUrl || !args.video) throw new Error('--base-url and --video are required');
  args.baseUrl = args.baseUrl.replace(/\/+$/, '');
  return args;
}

const STEPS = ['document', 'liveness', 'documentMatch', 'duplicateSearch', 'enrolment'];

function checkRecord(v) {
  const d = v.decision;
  check(d, `no decision record: ${JSON.stringify(redact(v))}`);
  check(d.outcome === v.status, `status ${v.status} but the record says ${d.outcome}`);
  check(['approved', 'rejected', 'needs_review', 'expired'].includes(d.outcome), `unknown outcome ${d.outcome}`);
  check(JSON.stringify(d.steps.map((s) => s.step)) === JSON.stringify(STEPS),
    `steps ${d.steps.map((s) => s.step).join(', ')}, expected ${STEPS.join(', ')}`);
  for (const s of d.steps) {
    check(['passed', 'failed', 'review', 'skipped'].includes(s.outcome), `step ${s.step}: outcome ${s.outcome}`);
    check(!Number.isNaN(Date.parse(s.at)), `step ${s.step}: bad timestamp ${s.at}`);
    if (typeof s.score === 'number') check(typeof s.threshold === 'number', `step ${s.step} has a score but no threshold`);
    if (s.outcome === 'failed' || s.outcome === 'review') check(s.reasons.length > 0, `step ${s.step} ${s.outcome} without a reason`);
  }
  const step = Object.fromEntries(d.steps.map((s) => [s.step, s]));
  check(step.document.outcome === 'passed', `document step ${step.document.outcome}`);
  const live = step.liveness;
  check(typeof live.score === 'number' && live.threshold === d.policy.livenessThreshold,
    `liveness score ${live.score} / threshold ${live.threshold} (policy ${d.policy.livenessThreshold})`);
  check(live.score < live.threshold && live.outcome !== 'passed',
    `a pre-recorded video passed liveness (confidence ${live.score})`);
  const m = step.documentMatch;
  check(typeof m.score === 'number' && m.thresholdInfo && m.thresholdInfo.falseMatchRate === d.policy.documentMatchFmr,
    `document match without its score or the policy's FMR: ${JSON.stringify(m)}`);
  check(m.score < m.threshold, `the specimen passport matched another person (similarity ${m.score})`);
  // Below the review threshold: failed (DocumentMismatch); in the band: review (DocumentMatchUncertain).
  const band = typeof m.details?.reviewThreshold === 'number' && m.score >= m.details.reviewThreshold;
  check(m.outcome === (band ? 'review' : 'failed') && m.reasons[0] === (band ? 'DocumentMatchUncertain' : 'DocumentMismatch'),
    `document match outcome ${m.outcome} (${m.reasons}) disagrees with its score ${m.score} and thresholds ${m.details?.reviewThreshold}/${m.threshold}`);
  check(step.duplicateSearch.thresholdInfo?.falseMatchRate === d.policy.duplicateMatchFmr, 'duplicate search FMR differs from the policy');
  check(step.enrolment.outcome === 'skipped', `enrolment ${step.enrolment.outcome} for a verification that was not approved`);
  check(d.outcome === 'rejected', `outcome ${d.outcome}, expected rejected`);
  for (const r of m.reasons) check(d.reasons.includes(r), `reasons ${d.reasons} lack ${r}`);
  check(d.models && d.models.faceModel && d.models.livenessModel, 'the record names no models');
}

async function main() {
  const args = parseArgs(process.argv);
  check(fs.existsSync(args.document), `${args.document} not found`);
  fs.rmSync(args.out, { recursive: true, force: true });
  fs.mkdirSync(args.out, { recursive: true });
  const browser = await chromium.launch({ executablePath: args.chromium, headless: true, args: launchArgs(args.video, true) });
  const runLog = [];
  const { context, page } = await newPage(browser, { width: 390, height: 844 }, true, runLog);
  try {
    const r = await page.goto(`${args.baseUrl}/demo/verify`, { waitUntil: 'load' });
    check(r.ok(), `GET /demo/verify answered ${r.status()}: is the demo enabled?`);
    await shot(page, args.out, '01-document');
    // A file that is no image first: a clear error, and the step can be retried.
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image') });
    await page.click('#upload');
    await page.locator('#document-error').waitFor({ state: 'visible' });
    const msg = await page.locator('#document-error').textContent();
    check(msg.includes('InvalidImageFormat'), `error for a text file: ${msg}`);
    await shot(page, args.out, '02-document-error');
    await page.setInputFiles('#file', args.document);
    await page.click('#upload');
    await page.locator('#found').waitFor({ state: 'visible', timeout: 30_000 });
    await page.waitForTimeout(300);
    await shot(page, args.out, '03-portrait-found');
    await runComponent(page, args.out, 4);
    await page.waitForFunction(() => document.body.dataset.result, null, { timeout: DECISION_TIMEOUT_MS })
      .catch(() => { throw new TestFailure(`no decision on the page within ${DECISION_TIMEOUT_MS / 1000} s`); });
    await page.waitForTimeout(200);
    await shot(page, args.out, '08-result', true);
    const demo = await page.evaluate(() => window.honninDemo);
    log(`verify: document step ${JSON.stringify(demo.document.document)}`);
    log(`verify: decision record\n${JSON.stringify(redact(demo.result), null, 2)}`);
    check(demo.complete && demo.complete.status === 'SUCCEEDED', `liveness stream: ${JSON.stringify(demo.complete || demo.error)}`);
    checkRecord(demo.result);
    const shown = await page.evaluate(() => document.body.dataset.result);
    check(shown === demo.result.status, `the page shows ${shown}, the verification is ${demo.result.status}`);
    // The server's copy agrees with what the page showed.
    const again = await (await fetch(`${args.baseUrl}/demo/api/verifications/${demo.verification.verificationId}`)).json();
    check(JSON.stringify(again.decision) === JSON.stringify(demo.result.decision), 'the decision record changed after the decision');
    log(`verify: PASS — ${demo.result.status} (${demo.result.decision.reasons.join(', ')})`);
  } catch (e) {
    await shot(page, args.out, 'failure', true).catch(() => {});
    if (runLog.length) console.error(`verify: page log:\n  ${runLog.slice(-40).join('\n  ')}`);
    throw e;
  } finally {
    await context.close();
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e instanceof TestFailure ? `FAIL: ${e.message}` : e);
  process.exit(1);
});

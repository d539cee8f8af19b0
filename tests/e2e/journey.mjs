// journey.mjs — the family move-in (転入) through the counter tablet web app
// in headless Chromium (issue 7 "Must show"; W1, G1-G5, A1-A3, I1-I8, S1,
// C1, C2, P1, P2).  Run by tests/integration/e2e.sh, which starts the daemon
// (demo pack, web/ of the repository), a private pcscd + vpcd + cardemu with
// a fictional My Number card on shimin-1's reader, and ippeveprinter as the
// printer of shimin-1 and kosodate-1.
//
// At shimin-1: login -> menu -> 転入 -> household (the card read with the PIN
// on the on-screen pad fills person 1: a wrong PIN first) -> every question
// (one answered question revisited) -> procedures -> slip printed and
// downloaded (its QR decoded with pdftoppm + zbarimg).  At kosodate-1 (a
// second browser context): resume from a photo of the slip -> forms (carried
// values marked, the rest filled, an invalid date) -> one signature drawn
// with the mouse (Pointer Events) -> print preview -> the bundle printed ->
// a network drop while typing.
//
// Every step has a time limit and a name: a failure says which step, saves
// a screenshot FAILED-….png and exits 1.  Taps and keystrokes are counted;
// tap-to-screen timings are printed beside a peer measured in the same run
// (a static file fetched by the same page), never asserted.
import {createRequire} from 'node:module';
import {execFileSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const env = (k, d) => {
  const v = process.env[k] ?? d;
  if (v === undefined) { console.error(`journey: ${k} is not set (run through tests/integration/e2e.sh)`); process.exit(2); }
  return v;
};
const URL0 = env('MG_E2E_URL');
const PW = env('MG_E2E_PASSWORD');
const USER1 = env('MG_E2E_USER1'), COUNTER1 = env('MG_E2E_COUNTER1');
const USER2 = env('MG_E2E_USER2'), COUNTER2 = env('MG_E2E_COUNTER2');
const SPOOL = env('MG_E2E_SPOOL');
const ART = env('MG_E2E_ARTIFACTS');
const TMP = env('MG_E2E_TMP');
const require = createRequire(path.join(env('MG_E2E_NODE_MODULES'), 'x.js'));
const {chromium} = require('playwright-core');

const STEP_MS = 30000;
const API = new URL('/api/v1', URL0).href;

// ---- bookkeeping ------------------------------------------------------------
const counts = {};          // phase -> {taps, keys}
let phase = 'staff login';
const bump = (k, n = 1) => { (counts[phase] ??= {taps: 0, keys: 0})[k] += n; };
let shotNo = 0;
const shots = [];
let currentPage = null;
let browser = null;
const timings = {question: [], field: [], load: [], peerFetch: [], peerLoad: []};
let stepNo = 0;

async function step(name, fn, ms = STEP_MS) {
  stepNo++;
  const t0 = Date.now();
  let timer;
  try {
    await Promise.race([
      fn(),
      new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms`)), ms); }),
    ]);
  } catch (e) {
    clearTimeout(timer);
    console.error(`\nFAILED at step ${stepNo} "${name}": ${e.message.split('\n').slice(0, 6).join('\n  ')}`);
    if (currentPage) {
      const f = path.join(ART, `FAILED-${String(stepNo).padStart(2, '0')}.png`);
      try { await currentPage.screenshot({path: f, fullPage: true, timeout: 5000}); console.error(`  screenshot: ${f}`); } catch { /* page gone */ }
    }
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
  clearTimeout(timer);
  console.log(`ok ${stepNo} - ${name} (${Date.now() - t0} ms)`);
}

function must(cond, what) {
  if (!cond) throw new Error(what);
}
// A check whose failure does not stop the journey (later screens are still
// exercised); the run fails at the end, naming it.
const softFailures = [];
function soft(cond, what) {
  if (!cond) {
    softFailures.push(`step ${stepNo}: ${what}`);
    console.log(`  not ok (the journey goes on): ${what}`);
  }
  return !!cond;
}

async function shot(page, name) {
  const f = path.join(ART, `${String(++shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({path: f});   // what the 1280×800 tablet shows
  shots.push(path.basename(f));
}

const tid = (page, id) => page.getByTestId(id, {exact: true});

async function tap(page, id) {
  const el = typeof id === 'string' ? tid(page, id) : id;
  await el.click();
  bump('taps');
}

// The visitor or staff taps into a field and types (each character a keystroke).
async function type(page, id, text) {
  const el = typeof id === 'string' ? tid(page, id) : id;
  await el.click();
  bump('taps');
  await el.pressSequentially(text);
  bump('keys', [...text].length);
}

// Clear a field (select all + delete: two keystrokes).
async function clear(page, id) {
  const el = typeof id === 'string' ? tid(page, id) : id;
  await el.click();
  bump('taps');
  await el.press('Control+a');
  await el.press('Delete');
  bump('keys', 2);
}

async function api(ctx, method, p, body) {
  const r = await ctx.request.fetch(`${API}${p}`, {method, data: body, failOnStatusCode: false});
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* a PDF */ }
  return {status: r.status(), json, text};
}

function median(a) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

// The time from a tap (the click event in the page) to the next frame after
// the screen changed, measured in the page.  armTiming() before the tap;
// selector: the part that changes; it has changed when (mode 'differs') its
// text is no longer `text` or it is the questions-done button, or (mode
// 'equals') it is shown with the text `text`.  (No eval in the page: the
// app's CSP forbids it, and the test runs under that CSP.)
async function armTiming(page, selector, mode, text) {
  await page.evaluate(([sel, m, want]) => {
    window.__mgTap = 0;
    window.__mgUpd = 0;
    const check = (el) => (m === 'equals' ? !el.hidden && el.textContent === want
      : el.dataset.testid === 'questions-done' || el.textContent !== want);
    if (!window.__mgClick) {
      window.__mgClick = true;
      document.addEventListener('pointerdown', () => { if (window.__mgArmed && !window.__mgTap) window.__mgTap = performance.now(); }, true);
      document.addEventListener('click', () => { if (window.__mgArmed && !window.__mgTap) window.__mgTap = performance.now(); }, true);
    }
    window.__mgArmed = true;
    const mo = new MutationObserver(() => {
      const el = document.querySelector(sel);
      if (window.__mgTap && el && check(el)) {
        mo.disconnect();
        requestAnimationFrame(() => { window.__mgUpd = performance.now(); window.__mgArmed = false; });
      }
    });
    mo.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
  }, [selector, mode, text]);
}
async function readTiming(page) {
  await page.waitForFunction(() => window.__mgUpd > 0, null, {timeout: 10000});
  return page.evaluate(() => window.__mgUpd - window.__mgTap);
}
// The peer: the same page fetches a static file of the app (no cache).
async function peerFetch(page) {
  return page.evaluate(async () => {
    const t = performance.now();
    const r = await fetch('/assets/app.css', {cache: 'no-store'});
    await r.text();
    return performance.now() - t;
  });
}

// Dark pixels in a box (mm) of a sheet's page as it prints (page-N.png with
// values=1), counted by the page itself: the image is fetched with the
// session's cookie and read through a canvas (no PNG decoder in node).
async function slotInk(page, vid, sheet, box, size) {
  return page.evaluate(async ([url, b, sz]) => {
    const r = await fetch(url, {cache: 'no-store'});
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    const img = await createImageBitmap(await r.blob());
    const c = new OffscreenCanvas(img.width, img.height);
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const kx = img.width / sz[0], ky = img.height / sz[1];
    const x = Math.floor(b.x * kx), y = Math.floor(b.y * ky);
    const w = Math.max(1, Math.floor(b.w * kx)), h = Math.max(1, Math.floor(b.h * ky));
    const d = g.getImageData(x, y, w, h).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && d[i] + d[i + 1] + d[i + 2] < 3 * 110) n++;
    return n;
  }, [`/api/v1/visits/${vid}/forms/${encodeURIComponent(sheet)}/page-${box.page}.png?width=800&values=1`, box, size]);
}

function newSpoolFiles(before) {
  if (!fs.existsSync(SPOOL)) return [];
  return fs.readdirSync(SPOOL).filter((f) => f.endsWith('.pdf') && !before.has(f));
}
async function waitSpool(before, what) {
  const t0 = Date.now();
  for (;;) {
    const f = newSpoolFiles(before);
    if (f.length) {
      const file = path.join(SPOOL, f[0]);
      // the printer writes the file as it receives it: wait for pdfinfo
      try { execFileSync('pdfinfo', [file], {stdio: 'pipe'}); return file; } catch { /* still arriving */ }
    }
    if (Date.now() - t0 > 20000) throw new Error(`${what}: no valid PDF arrived at ippeveprinter (${SPOOL})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const spoolNow = () => new Set(fs.existsSync(SPOOL) ? fs.readdirSync(SPOOL) : []);

// The people of the family; person 1 comes from the card (架空 花子).
const today = new Date();
const ymd = (d) => d.toISOString().slice(0, 10);
const yearsAgo = (y, days = 10) => { const d = new Date(today); d.setFullYear(d.getFullYear() - y); d.setDate(d.getDate() - days); return ymd(d); };
const FAMILY = [
  {given: '太郎', kanaGiven: 'タロウ', birth: yearsAgo(42)},
  {given: '一郎', kanaGiven: 'イチロウ', birth: yearsAgo(7)},
  {given: 'さくら', kanaGiven: 'サクラ', birth: yearsAgo(1)},
];
const YES = new Set(['tn_shaho', 'tn_kousei', 'tn_jidouteate', 'tn_tennyugaku']);

async function newContext() {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true, viewport: {width: 1280, height: 800}, locale: 'ja-JP',
    timezoneId: 'Asia/Tokyo', acceptDownloads: true,
  });
  context.setDefaultTimeout(15000);
  return context;
}

async function login(page, user, counter) {
  await type(page, 'login-user', user);
  await type(page, 'login-password', PW);
  const c = tid(page, 'login-counter');
  if (await c.isVisible()) {
    await clear(page, c);
    await type(page, c, counter);
  }
  await tap(page, 'login-submit');
  await tid(page, 'header-counter').filter({hasText: counter}).waitFor();
}

// ---- the journey --------------------------------------------------------------
async function main() {
  fs.mkdirSync(ART, {recursive: true});
  browser = await chromium.launch({
    executablePath: env('MG_E2E_CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  console.log(`chromium ${browser.version()}, ${URL0}`);

  // -- first load of the app, beside a trivial static load (cold contexts) --
  await step('first load of the app (5 cold loads, beside a static file load)', async () => {
    for (let i = 0; i < 5; i++) {
      const c = await newContext();
      const p = await c.newPage();
      currentPage = p;
      // from the navigation's start to the first frame showing the login
      // screen, in the page's own clock
      await p.goto(URL0, {waitUntil: 'commit'});
      const shown = await p.waitForFunction(() => {
        const el = document.querySelector('[data-testid="login-user"]');
        return el && el.offsetParent !== null && performance.now();
      }, null, {polling: 'raf'});
      timings.load.push(await shown.jsonValue());
      // the peer: a trivial static page (one file of the app), same clock
      const q = await c.newPage();
      await q.goto(new URL('/assets/app.css', URL0).href, {waitUntil: 'load'});
      timings.peerLoad.push(await q.evaluate(() => performance.getEntriesByType('navigation')[0].loadEventEnd));
      await c.close();
    }
  }, 60000);

  const A = await newContext();
  const page = await A.newPage();
  currentPage = page;
  const errors = [];
  page.on('pageerror', (e) => errors.push(`${e.message}`));

  await step('the login screen at shimin-1', async () => {
    await page.goto(URL0);
    await tid(page, 'login-user').waitFor();
    await shot(page, 'login');
  });
  await step('staff log in (wrong password first: a Japanese error)', async () => {
    phase = 'deliberate errors';
    await type(page, 'login-user', USER1);
    await type(page, 'login-password', 'not-the-password');
    const c = tid(page, 'login-counter');
    if (await c.isVisible()) { await clear(page, c); await type(page, c, COUNTER1); }
    await tap(page, 'login-submit');
    const err = tid(page, 'login-error');
    await err.filter({hasText: /[ぁ-んァ-ヶ一-龠]/}).waitFor();
    await shot(page, 'login-error');
    // the user id and the counter stay; only the password is typed again
    must((await tid(page, 'login-user').inputValue()) === USER1, 'the user id was lost after a wrong password');
    phase = 'staff login';
    await type(page, 'login-password', PW);
    await tap(page, 'login-submit');
    await tid(page, 'header-counter').filter({hasText: COUNTER1}).waitFor();
  });
  await step('the events socket is connected (session cookie on the upgrade)', async () => {
    await tid(page, 'conn-status').and(page.locator('[data-state="open"]')).waitFor();
  });
  await step('life-event menu', async () => {
    await tid(page, 'life-event-tennyu').waitFor();
    await shot(page, 'menu');
  });

  phase = 'household (visitor)';
  let vid = '';
  await step('転入 opens the household', async () => {
    await tap(page, 'life-event-tennyu');
    await page.waitForURL(/#\/visit\/[0-9a-f]{32}\/household$/);
    vid = /visit\/([0-9a-f]{32})/.exec(page.url())[1];
    await tid(page, 'person-0').waitFor();
    await shot(page, 'household');
  });

  let before = null;
  await step('card read: a wrong PIN shows 「残り2回」 and nothing is lost', async () => {
    await tap(page, 'person-0-card');
    const modal = tid(page, 'card-modal');
    await modal.waitFor();
    await tid(page, 'card-status').filter({hasText: 'マイナンバーカード'}).waitFor();
    await tid(page, 'card-tries').filter({hasText: '3'}).waitFor();
    before = (await api(A, 'GET', `/visits/${vid}`)).json;   // the household saved before the read
    phase = 'deliberate errors';
    for (const d of '9999') await tap(page, `pin-key-${d}`);
    const dots = await tid(page, 'pin-dots').textContent();
    must(!/9/.test(dots || ''), 'pin-dots shows the digits typed');
    await tap(page, 'pin-ok');
    await tid(page, 'card-error').filter({hasText: '残り2回'}).waitFor();
    await shot(page, 'card-wrong-pin');
    const now = (await api(A, 'GET', `/visits/${vid}`)).json;
    must(JSON.stringify(now.people) === JSON.stringify(before.people), 'the case changed after a wrong PIN');
    must(await modal.isVisible(), 'the card dialog closed after a wrong PIN');
    phase = 'household (visitor)';
  });
  await step('card read: the right PIN fills person 1', async () => {
    const retry = tid(page, 'card-retry');
    if (await retry.isVisible()) await tap(page, retry);
    await tid(page, 'card-tries').filter({hasText: '2'}).waitFor();
    for (const d of '1234') await tap(page, `pin-key-${d}`);
    await tap(page, 'pin-ok');
    await tid(page, 'card-status').filter({hasText: '読み取りました'}).waitFor();
    await shot(page, 'card-read');
    await tid(page, 'card-modal').waitFor({state: 'detached', timeout: 10000}).catch(async () => {
      await tap(page, 'card-cancel');   // 閉じる
    });
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid="person-0-name"]');
      return el && el.value.replace(/\s/g, '') === '架空花子';
    });
    const addr = await tid(page, 'person-0-address').inputValue();
    must(addr.startsWith('山口県周南市'), `person 1's address from the card: ${addr}`);
    const birth = await tid(page, 'person-0-birth').inputValue();
    must(birth.includes('1985'), `person 1's birth date from the card: ${birth}`);
  });
  await step('the rest of the household typed (the card holds no kana)', async () => {
    await type(page, 'person-0-kana', 'カクウ ハナコ');
    for (let i = 0; i < FAMILY.length; i++) {
      const p = FAMILY[i], n = i + 1;
      await tap(page, 'person-add');
      const name = tid(page, `person-${n}-name`);
      await name.waitFor();
      // the family name comes from person 1, the address too: only the rest is typed
      const pre = await name.inputValue();
      if (!pre.trim()) await type(page, name, '架空 ');
      await name.press('End');
      await name.pressSequentially(p.given);
      bump('keys', [...p.given].length);
      const kana = tid(page, `person-${n}-kana`);
      if (!(await kana.inputValue()).trim()) await type(page, kana, 'カクウ ');
      await kana.press('End');
      await kana.pressSequentially(p.kanaGiven);
      bump('keys', [...p.kanaGiven].length);
      await type(page, `person-${n}-birth`, p.birth);
      const addr = await tid(page, `person-${n}-address`).inputValue();
      must(addr.startsWith('山口県周南市'), `person ${n + 1}'s address was not carried from person 1 (${addr || 'empty'}): the visitor would type it again`);
    }
    await shot(page, 'household-filled');
    await tap(page, 'household-next');
    await page.waitForURL(/\/questions$/);
    const v = (await api(A, 'GET', `/visits/${vid}`)).json;
    must(v.people.length === 4, `4 people saved, got ${v.people.length}`);
    must(v.people[0].name.replace(/\s/g, '') === '架空花子', 'person 1 is the card holder');
    must(v.people.every((p) => p.address && p.address.startsWith('山口県周南市')), 'every person has the address');
  });

  phase = 'questions (visitor)';
  await step('every yes/no question, one revisited', async () => {
    let revisited = false, n = 0;
    for (;;) {
      const done = tid(page, 'questions-done');
      const q = tid(page, 'question-text');
      await page.waitForFunction(() => document.querySelector('[data-testid="questions-done"]') ||
        (document.querySelector('[data-testid="answer-yes"]') && !document.querySelector('[data-testid="answer-yes"]').disabled));
      if (await done.isVisible()) break;
      const v = (await api(A, 'GET', `/visits/${vid}`)).json;
      const qid = v.next_question.id;
      const text = await q.textContent();
      must(text === v.next_question.text, `question-text shows "${text}", the case's next question is "${v.next_question.text}"`);
      if (n === 1) await shot(page, 'questions');
      await armTiming(page, '[data-testid="questions-done"], [data-testid="question-text"]', 'differs', text);
      await tap(page, YES.has(qid) ? 'answer-yes' : 'answer-no');
      timings.question.push(await readTiming(page));
      timings.peerFetch.push(await peerFetch(page));
      n++;
      if (n === 3 && !revisited) {
        // G3: tap an answered question, it comes back with its answer; answer it again
        const first = v.answered.length ? v.answered[0].id : qid;
        await tap(page, `answered-${first}`);
        await q.filter({hasText: v.answered.length ? v.answered[0].text : text}).waitFor();
        await shot(page, 'questions-back');
        await tap(page, YES.has(first) ? 'answer-yes' : 'answer-no');
        revisited = true;
      }
      must(n < 40, 'more than 40 questions');
    }
    must(revisited, 'no answered question was revisited');
    const p = await tid(page, 'progress').getAttribute('aria-valuenow');
    const v = (await api(A, 'GET', `/visits/${vid}`)).json;
    must(v.progress.complete, 'the case says questions remain');
    must(p === String(v.progress.answered), `progress shows ${p}, ${v.progress.answered} answered`);
    console.log(`  ${n} questions answered (+1 revisited)`);
    await shot(page, 'questions-done');
  }, 90000);

  phase = 'procedures and slip (staff)';
  let slipPdf = '', token = '';
  await step('the procedure list', async () => {
    await tap(page, 'questions-done');
    await page.waitForURL(/\/procedures$/);
    await tid(page, 'procedure-jidouteate_nintei').waitFor();
    await tid(page, 'procedure-tennyu_todoke').waitFor();
    await shot(page, 'procedures');
  });
  await step('the slip printed at shimin-1 arrives at ippeveprinter', async () => {
    const before = spoolNow();
    await tap(page, 'slip-print');
    const f = await waitSpool(before, 'slip');
    fs.copyFileSync(f, path.join(ART, 'slip-printed.pdf'));
  });
  await step('the slip downloaded, its QR decoded (pdftoppm + zbarimg)', async () => {
    const dl = page.waitForEvent('download');
    await tap(page, 'slip-download');
    const d = await dl;
    slipPdf = path.join(ART, 'slip-downloaded.pdf');
    await d.saveAs(slipPdf);
    execFileSync('pdfinfo', [slipPdf], {stdio: 'pipe'});
    execFileSync('pdftoppm', ['-png', '-r', '150', '-f', '1', '-l', '1', slipPdf, path.join(ART, 'slip')]);
    const png = fs.readdirSync(ART).find((f) => /^slip-0*1\.png$/.test(f));
    must(png, 'pdftoppm made no image');
    fs.renameSync(path.join(ART, png), path.join(ART, 'slip.png'));
    const out = execFileSync('zbarimg', ['-q', path.join(ART, 'slip.png')], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']});
    const qr = out.split('\n').find((l) => l.startsWith('QR-Code:'));
    must(qr, `no QR code on the slip (zbarimg: ${out.trim()})`);
    token = qr.slice('QR-Code:'.length).trim();
    // the slip's QR: "MG1:" and the 43-character continuation token
    must(/^(MG1:)?[A-Za-z0-9_-]{43}$/.test(token), `the QR payload is not a continuation token (${token.length} characters)`);
    console.log(`  QR payload: ${token.slice(0, 4)}… (${token.length} characters), barcode: ${out.includes('CODE-128:') ? 'yes' : 'no'}`);
  });

  // -- the second counter ---------------------------------------------------
  phase = 'kosodate-1 login (staff)';
  const K = await newContext();
  const pk = await K.newPage();
  currentPage = pk;
  pk.on('pageerror', (e) => errors.push(`${e.message}`));
  await step('staff log in at kosodate-1 (a second tablet)', async () => {
    await pk.goto(URL0);
    await tid(pk, 'login-user').waitFor();
    await login(pk, USER2, COUNTER2);
    await tid(pk, 'menu-resume').waitFor();
  });
  phase = 'resume (staff)';
  await step('continue by the QR: a photo of the slip on the resume screen', async () => {
    await tap(pk, 'menu-resume');
    await tid(pk, 'resume-photo').waitFor({state: 'attached'});
    await shot(pk, 'resume');
    await tid(pk, 'resume-photo').setInputFiles(path.join(ART, 'slip.png'));
    bump('taps');
    await pk.waitForURL(new RegExp(`#/visit/${vid}/`));
    await tid(pk, 'visit-number').waitFor();
    await shot(pk, 'resumed');
  });

  phase = 'forms (visitor)';
  let sheetId = 'jidouteate';
  await step('the forms of the case at kosodate-1, values counted by source', async () => {
    await tap(pk, 'tab-forms');
    await pk.waitForURL(/\/forms$/);
    await tid(pk, `sheet-${sheetId}`).waitFor();
    const f = (await api(K, 'GET', `/visits/${vid}/forms`)).json;
    must(f.values.card > 0, `no value from the card in the forms (${JSON.stringify(f.values)})`);
    must(Number(await tid(pk, 'values-card').textContent()) === f.values.card, 'values-card differs from the API');
    must(Number(await tid(pk, 'values-carried').textContent()) === f.values.carried, 'values-carried differs from the API');
    await shot(pk, 'forms');
  });
  let sheet = null;
  await step('the 児童手当 form: carried values marked (カード / 引継)', async () => {
    await tap(pk, `sheet-${sheetId}`);
    await pk.waitForURL(new RegExp(`/forms/${sheetId}$`));
    await tid(pk, 'form-page-image').waitFor();
    sheet = (await api(K, 'GET', `/visits/${vid}/forms/${sheetId}`)).json;
    const name = sheet.fields.find((x) => x.id === 'name');
    must((await tid(pk, 'field-name-family').inputValue()) === '架空', 'field-name-family is not 架空');
    const mark = async (id) => (await tid(pk, `${id}-source`).textContent()).trim();
    await tid(pk, 'field-c_name-1-source').filter({hasText: '引継'}).waitFor();
    // A1: what the card read is marked as read from the card, also after the
    // household was edited (kana and three more people typed after the read)
    const addr = sheet.fields.find((x) => x.id === 'address');
    if (soft(name.values[0].source === 'card' && addr.values[0].source === 'card',
      `the applicant's name and address read from the card come back as "${name.values[0].source}"/"${addr.values[0].source}", not "card", after the household was saved (PUT /visits/{id}/people drops their card source)`)) {
      must(await mark('field-name') === 'カード', `field-name-source shows "${await mark('field-name')}"`);
      must(await mark('field-address') === 'カード', `field-address-source shows "${await mark('field-address')}"`);
    } else {
      must(['引継', 'カード'].includes(await mark('field-name')), `field-name-source shows "${await mark('field-name')}"`);
    }
    await shot(pk, 'form');
  });
  await step('an invalid date shows a Japanese error in place, the text stays', async () => {
    const bad = '令和8年2月30日';
    const id = 'field-jiyu_date';
    phase = 'deliberate errors';
    await clear(pk, id);
    await type(pk, id, bad);
    await tid(pk, id).press('Tab');   // leave the field (change event)
    bump('keys');
    const err = tid(pk, `${id}-error`);
    await err.filter({hasText: /[ぁ-んァ-ヶ一-龠]/}).waitFor();
    must((await tid(pk, id).inputValue()) === bad, 'the typed date was lost');
    await shot(pk, 'form-invalid-date');
    const s = (await api(K, 'GET', `/visits/${vid}/forms/${sheetId}`)).json;
    const v = s.fields.find((x) => x.id === 'jiyu_date').values[0];
    must(v.value === bad && v.error, `the server did not keep the invalid date as typed: ${JSON.stringify(v)}`);
    // corrected with 今日
    phase = 'forms (visitor)';
    await armTiming(pk, `[data-testid="${id}-source"]`, 'equals', '入力');
    await tap(pk, `${id}-today`);
    timings.field.push(await readTiming(pk));
    timings.peerFetch.push(await peerFetch(pk));
    await err.waitFor({state: 'hidden'});
  });
  await step('the remaining fields filled (tap-to-mark timing on a field)', async () => {
    sheet = (await api(K, 'GET', `/visits/${vid}/forms/${sheetId}`)).json;
    // rows in use: a row where any field of its group has a value
    const used = new Set();
    for (const f of sheet.fields) if (f.group) for (const v of f.values) if (v.value != null && v.value !== '') used.add(`${f.group}:${v.row}`);
    for (const f of sheet.fields) {
      if (f.computed) continue;
      const rows = f.group ? f.values.filter((v) => used.has(`${f.group}:${v.row}`)) : [f.values[0] || {}];
      for (const v of rows) {
        const empty = v.value == null || v.value === '';
        const wanted = f.required || ['yokin', 'kouza', 'hoken', 'c_doukyo'].includes(f.id);
        if (!empty || !wanted) continue;
        const id = `field-${f.id}${f.group ? `-${v.row}` : ''}`;
        if (f.type === 'radio') {
          const c = sheet.choices[f.choices][0];
          await armTiming(pk, `[data-testid="${id}-source"]`, 'equals', '入力');
          await tap(pk, `${id}-${c.value}`);
          timings.field.push(await readTiming(pk));
          timings.peerFetch.push(await peerFetch(pk));
        } else if (f.type === 'select') {
          const c = sheet.choices[f.choices].find((x) => !x.parent);
          await tid(pk, id).selectOption(c.value);
          bump('taps', 2);
        } else if (f.type === 'checkbox' || f.type === 'date') {
          await armTiming(pk, `[data-testid="${id}-source"]`, 'equals', '入力');
          await tap(pk, f.type === 'date' ? `${id}-today` : id);
          timings.field.push(await readTiming(pk));
          timings.peerFetch.push(await peerFetch(pk));
        } else {
          const text = {number: '1234567', text: '周南銀行 徳山支店'}[f.type] || 'テスト';
          await type(pk, id, text);
          await tid(pk, id).press('Tab');
          bump('keys');
        }
      }
    }
    await pk.waitForFunction(() => !document.querySelector('.src')?.textContent?.includes('保存中'));
    await pk.waitForTimeout(300);
    sheet = (await api(K, 'GET', `/visits/${vid}/forms/${sheetId}`)).json;
    const miss = sheet.fields.filter((f) => f.required && !f.computed).flatMap((f) =>
      (f.group ? f.values.filter((v) => used.has(`${f.group}:${v.row}`)) : [f.values[0] || {}])
        .filter((v) => v.value == null || v.value === '').map((v) => `${f.id}${v.row ? `[${v.row}]` : ''}`));
    must(sheet.missing === 0 && !miss.length, `required fields still empty: ${miss.join(', ') || sheet.missing}`);
    must(sheet.errors === 0, `${sheet.errors} field(s) with errors`);
    await shot(pk, 'form-filled');
  }, 60000);

  phase = 'signature (visitor)';
  const slots = [];   // every @signature box of every sheet, with its ink before signing
  await step('the signature slots of every sheet, before signing', async () => {
    const f = (await api(K, 'GET', `/visits/${vid}/forms`)).json;
    for (const s of f.forms) {
      const d = (await api(K, 'GET', `/visits/${vid}/forms/${encodeURIComponent(s.id)}`)).json;
      for (const b of d.layout.boxes.filter((x) => x.field === '@signature'))
        slots.push({sheet: s.id, box: b, size: d.layout.page_size, before: await slotInk(pk, vid, s.id, b, d.layout.page_size)});
    }
    must(slots.length > 0, 'no sheet of the case has a signature slot');
  }, 60000);
  await step('one signature drawn with the mouse (Pointer Events)', async () => {
    await tap(pk, 'tab-signature');
    const c = tid(pk, 'signature-canvas');
    await c.waitFor();
    const b = await c.boundingBox();
    const pts = (fn, n) => Array.from({length: n + 1}, (_, i) => fn(i / n));
    const strokes = [
      pts((t) => [0.1 + 0.25 * t, 0.3 + 0.4 * Math.sin(t * Math.PI)], 20),
      pts((t) => [0.4 + 0.2 * t, 0.7 - 0.4 * t], 12),
      pts((t) => [0.65 + 0.25 * t, 0.5 + 0.2 * Math.cos(t * 2 * Math.PI)], 24),
    ];
    for (const s of strokes) {
      await pk.mouse.move(b.x + s[0][0] * b.width, b.y + s[0][1] * b.height);
      await pk.mouse.down();
      for (const [x, y] of s.slice(1)) await pk.mouse.move(b.x + x * b.width, b.y + y * b.height, {steps: 2});
      await pk.mouse.up();
      bump('taps');
    }
    await shot(pk, 'signature-drawn');
    await tap(pk, 'signature-save');
    const prev = tid(pk, 'signature-preview');
    await prev.waitFor({state: 'visible'});
    await pk.waitForFunction(() => {
      const i = document.querySelector('[data-testid="signature-preview"]');
      return i && i.complete && i.naturalWidth > 0;
    });
    const f = (await api(K, 'GET', `/visits/${vid}/forms`)).json;
    must(f.signature === true, 'the forms do not know the signature');
    await shot(pk, 'signature');
  });
  await step('the signature is in every slot of every sheet (pages as they print)', async () => {
    const empty = [];
    for (const s of slots) {
      s.after = await slotInk(pk, vid, s.sheet, s.box, s.size);
      if (s.after < s.before + 40) empty.push(`${s.sheet} page ${s.box.page} (${s.before} -> ${s.after} dark pixels)`);
    }
    must(!empty.length, `no signature in: ${empty.join(', ')}`);
    console.log(`  ${slots.length} slot(s) in ${new Set(slots.map((x) => x.sheet)).size} sheet(s) hold the signature`);
  }, 60000);

  phase = 'print (staff)';
  await step('preview: every sheet as it will print (the signature in its slots)', async () => {
    await tap(pk, 'tab-print');
    await tid(pk, `preview-${sheetId}`).waitFor();
    await pk.waitForFunction((s) => {
      const i = document.querySelector(`[data-testid="preview-${s}"]`);
      return i && i.complete && i.naturalWidth > 0;
    }, sheetId, {timeout: 20000});
    // every sheet's preview shows (not only the one filled here)
    const ok = await pk.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('img[data-testid^="preview-"]')];
      return imgs.length && imgs.every((i) => i.complete && i.naturalWidth > 0) && imgs.length;
    }, null, {timeout: 20000}).then((h) => h.jsonValue(), () => 0);
    if (!ok) {
      const bad = await pk.evaluate(() => [...document.querySelectorAll('img[data-testid^="preview-"]')]
        .filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => `${i.dataset.testid} (${i.src ? 'src set' : 'no src'})`));
      soft(false, `print preview images that did not load within 20 s: ${bad.join(', ')} (web/app/screens/print.js)`);
    }
    await shot(pk, 'print-preview');
  });
  await step('the bundle printed at kosodate-1 arrives at ippeveprinter as a valid PDF', async () => {
    const before = spoolNow();
    await tap(pk, 'print-bundle');
    const f = await waitSpool(before, 'bundle');
    fs.copyFileSync(f, path.join(ART, 'bundle-printed.pdf'));
    const info = execFileSync('pdfinfo', [f], {encoding: 'utf8'});
    const pages = Number(/Pages:\s+(\d+)/.exec(info)[1]);
    const nSheets = (await api(K, 'GET', `/visits/${vid}/forms`)).json.forms.length;
    must(pages >= nSheets, `the bundle has ${pages} pages for ${nSheets} sheets`);
    await tid(pk, 'print-status').filter({hasText: /[ぁ-んァ-ヶ一-龠]/}).waitFor();
    await shot(pk, 'printed');
    console.log(`  bundle: ${pages} pages, ${nSheets} sheets`);
  }, 60000);

  phase = 'network drop (visitor)';
  await step('a network drop while typing: 未送信, then sent once back online', async () => {
    await tap(pk, 'tab-forms');
    await tap(pk, `sheet-${sheetId}`);
    await tid(pk, 'field-phone').waitFor();
    await K.setOffline(true);
    await type(pk, 'field-phone', '0834-22-0000');
    await tid(pk, 'field-phone').press('Tab');
    bump('keys');
    await tid(pk, 'pending-drafts').filter({hasText: '未送信'}).waitFor({state: 'visible'});
    await shot(pk, 'offline-pending');
    await K.setOffline(false);
    await tid(pk, 'pending-drafts').waitFor({state: 'hidden', timeout: 35000});
    const s = (await api(K, 'GET', `/visits/${vid}/forms/${sheetId}`)).json;
    const v = s.fields.find((x) => x.id === 'phone').values[0];
    must(v.value && v.value.replace(/\D/g, '') === '0834220000', `the phone number typed offline is not on the server: ${JSON.stringify(v.value)}`);
    await shot(pk, 'online-sent');
  }, 60000);

  phase = 'notes (staff)';
  await step('the staff notes screen', async () => {
    await tap(pk, 'tab-notes');
    await tid(pk, 'note-text').waitFor();
    await shot(pk, 'notes');
  });

  // -- 書かない窓口: nothing the card or an earlier entry holds was typed --
  await step('the visitor typed no name or address the card or the household holds', async () => {
    const f = (await api(K, 'GET', `/visits/${vid}/forms`)).json;
    const bad = [];
    for (const s of f.forms) {
      const d = (await api(K, 'GET', `/visits/${vid}/forms/${encodeURIComponent(s.id)}`)).json;
      for (const x of d.fields) {
        if (!/^(applicant|household|children|pupils|preschoolers)\.(name|kana|address|birth_date)$/.test(x.carry || '')) continue;
        for (const v of x.values) if (v.source === 'typed') bad.push(`${s.id}.${x.id}${v.row ? `[${v.row}]` : ''}`);
      }
    }
    must(!bad.length, `typed again in a form: ${bad.join(', ')}`);
    console.log(`  printed values by source: ${JSON.stringify(f.values)}`);
  }, 60000);

  if (errors.length) console.log(`page errors seen: ${errors.length}\n  ${errors.slice(0, 5).join('\n  ')}`);
  await browser.close();
  browser = null;

  // ---- figures -----------------------------------------------------------------
  let taps = 0, keys = 0;
  console.log('\ntaps and keystrokes of the journey:');
  for (const [k, v] of Object.entries(counts)) {
    console.log(`  ${k.padEnd(30)} taps ${String(v.taps).padStart(3)}  keystrokes ${String(v.keys).padStart(4)}`);
    taps += v.taps;
    keys += v.keys;
  }
  console.log(`  ${'total'.padEnd(30)} taps ${String(taps).padStart(3)}  keystrokes ${String(keys).padStart(4)}`);
  const fmt = (x) => (Number.isFinite(x) ? `${x.toFixed(1)} ms` : 'n/a');
  const ratio = (a, b) => (Number.isFinite(a) && b > 0 ? `${(a / b).toFixed(1)}x` : 'n/a');
  const q = median(timings.question), fld = median(timings.field), pf = median(timings.peerFetch);
  const ld = median(timings.load), pl = median(timings.peerLoad);
  console.log('\nbenchmark (loopback, medians; targets: tap < 100 ms, first load < 500 ms):');
  console.log(`  question tap -> next question  ${fmt(q)} (n=${timings.question.length})  peer: static file fetch ${fmt(pf)}  ratio ${ratio(q, pf)}`);
  console.log(`  form field tap -> saved mark   ${fmt(fld)} (n=${timings.field.length})  peer: static file fetch ${fmt(pf)}  ratio ${ratio(fld, pf)}`);
  console.log(`  first load -> login screen     ${fmt(ld)} (n=${timings.load.length})  peer: static page load ${fmt(pl)}  ratio ${ratio(ld, pl)}`);
  console.log(`\nscreenshots (${shots.length}) in ${ART}:\n  ${shots.join('\n  ')}`);
  if (softFailures.length) {
    console.error(`\nFAILED: ${softFailures.length} check(s) failed along the journey:\n  ${softFailures.join('\n  ')}`);
    process.exit(1);
  }
}

main().catch(async (e) => {
  console.error(`journey: ${e.stack || e}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
});

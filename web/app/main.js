// main.js — the counter tablet app: session, header, hash router, the
// visit tab bar and the ctx object every screen gets (contract: issue 7).
import {h, fill, toast, modal, errorText, confirmBox} from './ui.js';
import {makeApi} from './api.js';
import {makeEvents} from './ws.js';

const TABS = [
  ['household', '世帯'], ['questions', '質問'], ['procedures', '手続'], ['forms', '申請書'],
  ['signature', '署名'], ['print', '印刷'], ['notes', 'メモ'],
];
const STAFF_TABS = new Set(['notes']);

const root = document.documentElement;
const ctx = {
  session: null,
  view: localStorage.getItem('mg.view') === 'visitor' ? 'visitor' : 'staff',
  visit: null,
  h, errorText, modal, toast,
};

const client = makeApi({
  csrf: () => (ctx.session ? ctx.session.csrf_token : ''),
  onUnauthorized: () => {
    if (!ctx.session) return;
    endSession();
    toast('ログインの有効期限が切れました。もう一度ログインしてください。', 'error');
    ctx.go('#/login');
  },
  onPending: (n) => {
    el.pending.hidden = n === 0;
    el.pending.textContent = `未送信 ${n}件`;
  },
});
const events = makeEvents((state) => {
  const t = {open: '接続中', connecting: '接続しています…', closed: '再接続を待っています'}[state];
  el.conn.dataset.state = state;
  el.conn.textContent = t;
  el.conn.title = t;
  if (state === 'open') client.flushAll();
});

ctx.api = client.api;
ctx.draft = client.draft;
ctx.drafts = {pending: client.pending, has: client.has, flush: client.flushAll};
ctx.ws = {on: events.on};
ctx.setVisit = (v) => {
  if (v && v.case && v.token) v = v.case;   // POST /visits answers {token, case}
  ctx.visit = v || null;
  updateVisitBar();
  return ctx.visit;
};
ctx.go = (hash) => {
  if (location.hash === hash) route();
  else location.hash = hash;
};
ctx.rerender = () => route();

// ---- header ---------------------------------------------------------------

function toggle(testid, label, on, fn) {
  const b = h('button', {class: 'switch', type: 'button', role: 'switch', testid,
                         'aria-checked': String(on)},
    h('span', {class: 'switch-track', 'aria-hidden': 'true'}, h('span', {class: 'switch-knob'})),
    h('span', {class: 'switch-label'}, label));
  b.addEventListener('click', () => {
    const now = b.getAttribute('aria-checked') !== 'true';
    b.setAttribute('aria-checked', String(now));
    fn(now);
  });
  return b;
}

const el = {};
el.counter = h('span', {class: 'hdr-counter', testid: 'header-counter'});
el.user = h('span', {class: 'hdr-user', testid: 'header-user'});
el.conn = h('span', {class: 'conn', testid: 'conn-status', role: 'status', dataset: {state: 'closed'}}, '未接続');
el.pending = h('span', {class: 'pending', testid: 'pending-drafts', role: 'status', hidden: true}, '未送信 0件');
el.view = toggle('view-toggle', '来庁者向け表示', ctx.view === 'visitor', (on) => {
  ctx.view = on ? 'visitor' : 'staff';
  localStorage.setItem('mg.view', ctx.view);
  applyView();
  route();
});
const large = localStorage.getItem('mg.large') === '1';
el.text = toggle('text-size', '文字を大きく', large, (on) => {
  root.classList.toggle('large-text', on);
  localStorage.setItem('mg.large', on ? '1' : '0');
});
root.classList.toggle('large-text', large);
el.logout = h('button', {class: 'btn ghost small', type: 'button', testid: 'logout', on: {click: logout}}, 'ログアウト');
el.who = h('div', {class: 'hdr-who'}, el.counter, el.user);
el.header = h('header', {class: 'top'},
  h('a', {class: 'brand', href: '#/', 'aria-label': '最初の画面へ'},
    h('span', {class: 'brand-mark', 'aria-hidden': 'true'}, '窓'), h('span', {}, '窓口案内')),
  el.who,
  h('div', {class: 'hdr-status'}, el.conn, el.pending),
  h('div', {class: 'hdr-tools'}, el.view, el.text, el.logout));

el.number = h('span', {class: 'visit-number', testid: 'visit-number'});
el.event = h('span', {class: 'visit-event'});
el.closed = h('span', {class: 'badge closed', hidden: true}, '終了');
el.tabs = {};
el.tablist = h('div', {class: 'tabs', role: 'navigation', 'aria-label': '案件の画面'},
  TABS.map(([id, label]) => (el.tabs[id] = h('a', {class: ['tab', STAFF_TABS.has(id) && 'staff-only'],
                                                   testid: `tab-${id}`, href: '#'}, label))));
el.visitbar = h('nav', {class: 'visitbar', hidden: true},
  h('div', {class: 'visit-id'}, h('span', {class: 'visit-label'}, '受付番号'), el.number, el.closed, el.event),
  el.tablist,
  h('button', {class: 'btn ghost small visit-close', type: 'button', testid: 'visit-close',
               on: {click: () => { ctx.visit = null; ctx.go('#/'); }}}, '閉じる'));
el.main = h('main', {id: 'screen', tabindex: '-1'});
document.body.replaceChildren(el.header, el.visitbar, el.main);

function applyView() {
  root.classList.toggle('view-visitor', ctx.view === 'visitor');
}
applyView();

function updateHeader() {
  const s = ctx.session;
  el.header.classList.toggle('signed-out', !s);
  el.counter.textContent = s ? `窓口 ${s.counter}` : '';
  el.user.textContent = s ? `${s.user.name} さん` : '';
}

function updateVisitBar() {
  const v = ctx.visit;
  if (!v) return;
  el.number.textContent = v.number_display || v.number || '';
  el.event.textContent = v.life_event ? v.life_event.name : '';
  el.closed.hidden = v.status !== 'closed';
  for (const [id] of TABS) el.tabs[id].href = `#/visit/${v.id}/${id}`;
}

// ---- session --------------------------------------------------------------

ctx.login = (session) => {
  ctx.session = session;
  updateHeader();
  client.restore();
  events.start();
};

function endSession() {
  ctx.session = null;
  ctx.visit = null;
  client.clearDrafts();
  events.stop();
  updateHeader();
}

async function logout() {
  if (client.pending() && !(await confirmBox(
    `まだ送信されていない入力が${client.pending()}件あります。ログアウトすると失われます。ログアウトしますか。`,
    'ログアウトする', 'やめる'))) return;
  try { await ctx.api('DELETE', '/session', undefined, {noAuthRedirect: true}); } catch { /* gone anyway */ }
  endSession();
  ctx.go('#/login');
}

window.addEventListener('online', () => events.poke());

// ---- router ---------------------------------------------------------------

const ROUTES = [
  [/^\/login$/, () => ['login', {}]],
  [/^\/?$/, () => ['menu', {}]],
  [/^\/resume$/, () => ['resume', {}]],
  [/^\/visit\/([0-9a-f]{32})\/forms\/([A-Za-z0-9_.-]+)$/, (m) => ['form', {id: m[1], sheet: m[2]}, 'forms']],
  [/^\/visit\/([0-9a-f]{32})\/(household|questions|procedures|forms|signature|print|notes)$/,
    (m) => [m[2], {id: m[1]}, m[2]]],
];

let cleanup = null;
let seq = 0;

async function route() {
  const my = ++seq;
  const path = decodeURIComponent(location.hash.replace(/^#/, '')) || '/';
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  let found = null;
  for (const [re, fn] of ROUTES) {
    const m = re.exec(path);
    if (m) { found = fn(m); break; }
  }
  if (!found) { ctx.go('#/'); return; }
  const [name, params, tab] = found;
  if (!ctx.session && name !== 'login') { ctx.go('#/login'); return; }
  if (ctx.session && name === 'login') { ctx.go('#/'); return; }
  document.body.dataset.screen = name;

  const screen = h('div', {class: `screen screen-${name}`});
  if (tab) {
    if (!ctx.visit || ctx.visit.id !== params.id) {
      fill(el.main, h('p', {class: 'loading'}, '読み込んでいます…'));
      try {
        ctx.setVisit(await ctx.api('GET', `/visits/${params.id}`));
      } catch (e) {
        if (my !== seq) return;
        if (e.status !== 401) { toast(errorText(e), 'error'); ctx.go('#/'); }
        return;
      }
      if (my !== seq) return;
    }
    updateVisitBar();
    for (const [id] of TABS) {
      if (id === tab) el.tabs[id].setAttribute('aria-current', 'page');
      else el.tabs[id].removeAttribute('aria-current');
    }
    el.visitbar.hidden = false;
  } else {
    el.visitbar.hidden = true;
  }
  fill(el.main, screen);

  let mod;
  try {
    mod = await import(`./screens/${name}.js`);
  } catch (e) {
    console.error(e);
    if (my === seq) fill(screen, h('p', {class: 'empty'}, 'この画面は準備中です。'));
    return;
  }
  if (my !== seq) return;
  try {
    const c = await mod.default(screen, ctx, params);
    if (my !== seq) { if (typeof c === 'function') c(); return; }
    if (typeof c === 'function') cleanup = c;
  } catch (e) {
    console.error(e);
    if (my !== seq) return;
    if (e.status === 401) return;
    fill(screen, h('div', {class: 'panel error-panel', role: 'alert'},
      h('p', {}, e.code ? errorText(e) : '画面を表示できませんでした。'),
      h('button', {class: 'btn', type: 'button', on: {click: () => route()}}, 'もう一度読み込む')));
  }
  if (my === seq && !el.main.contains(document.activeElement)) {
    const heading = screen.querySelector('h1');
    if (heading) { heading.tabIndex = -1; heading.focus({preventScroll: true}); }
  }
}

window.addEventListener('hashchange', route);

// Keyboard: Enter and Space act on role=button/tab-like elements too.
document.addEventListener('keydown', (e) => {
  const t = e.target;
  if ((e.key === 'Enter' || e.key === ' ') && t.getAttribute && t.getAttribute('role') === 'button' &&
      t.tagName !== 'BUTTON') {
    e.preventDefault();
    t.click();
  }
});

(async function boot() {
  updateHeader();
  try {
    ctx.login(await ctx.api('GET', '/session', undefined, {noAuthRedirect: true}));
  } catch (e) {
    ctx.session = null;
    if (e.code !== 'not_logged_in') toast(errorText(e), 'error');
  }
  route();
})();

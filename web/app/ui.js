// ui.js — DOM helper, toast, modal dialog and the Japanese text of every
// API error code (docs/api.md).  No framework: screens build DOM with h().

// h('button', {class: 'big', testid: 'x', on: {click: fn}}, 'text', child…)
// attrs: class, dataset, on, testid (→ data-testid), aria-*/role/for… as
// attributes, anything else as a property (value, disabled, type, hidden…).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'style') Object.assign(el.style, v);
    else if (k.startsWith('aria-') || k === 'role' || k === 'for' || k === 'list' ||
             k === 'inputmode' || k === 'autocomplete' || k === 'enterkeyhint' ||
             k === 'capture' || k === 'accept' || k === 'tabindex') el.setAttribute(k, v === true ? '' : v);
    else el[k] = v;
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c == null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

// Replace an element's children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let toastTimer = 0;
// A short message at the bottom; errors stay longer and are announced.
export function toast(text, kind = 'info') {
  let el = document.getElementById('toast');
  if (!el) {
    el = h('div', {id: 'toast', testid: 'toast', role: 'status', 'aria-live': 'polite'});
    document.body.append(el);
  }
  el.className = `toast show ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), kind === 'error' ? 8000 : 3500);
}

const FOCUSABLE = 'a[href],button:not([disabled]),input:not([disabled]),select:not([disabled]),' +
  'textarea:not([disabled]),[tabindex]:not([tabindex="-1"])';

// modal(contentEl, {onClose, label}) -> close().  Focus stays inside; Esc
// and the backdrop close it; focus returns where it was.  contentEl also
// receives a 'modalclose' event when the dialog closes by any way.
export function modal(content, opts = {}) {
  const before = document.activeElement;
  const box = h('div', {class: 'modal', role: 'dialog', 'aria-modal': 'true',
                        'aria-label': opts.label || null, tabindex: '-1'}, content);
  const back = h('div', {class: 'modal-back'}, box);
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    document.removeEventListener('keydown', onKey, true);
    back.remove();
    content.dispatchEvent(new CustomEvent('modalclose'));
    if (opts.onClose) opts.onClose();
    if (before && before.isConnected && before.focus) before.focus();
  };
  const onKey = (e) => {
    if (e.key === 'Escape') { e.preventDefault(); close(); return; }
    if (e.key !== 'Tab') return;
    const f = [...box.querySelectorAll(FOCUSABLE)].filter((x) => x.offsetParent !== null);
    if (!f.length) { e.preventDefault(); box.focus(); return; }
    const first = f[0], last = f[f.length - 1];
    if (e.shiftKey && (document.activeElement === first || document.activeElement === box)) {
      e.preventDefault(); last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault(); first.focus();
    }
  };
  back.addEventListener('click', (e) => { if (e.target === back && !opts.sticky) close(); });
  document.addEventListener('keydown', onKey, true);
  document.body.append(back);
  const first = box.querySelector('[autofocus]') || box.querySelector(FOCUSABLE) || box;
  first.focus();
  return close;
}

// confirmBox(ctx-less): a yes/no dialog, resolves true/false.
export function confirmBox(text, yes = 'はい', no = 'やめる') {
  return new Promise((resolve) => {
    let result = false;
    const body = h('div', {class: 'confirm'},
      h('p', {class: 'confirm-text'}, text),
      h('div', {class: 'row end'},
        h('button', {class: 'btn', type: 'button', on: {click: () => close()}}, no),
        h('button', {class: 'btn primary', type: 'button', autofocus: true,
                     on: {click: () => { result = true; close(); }}}, yes)));
    const close = modal(body, {onClose: () => resolve(result), label: text});
  });
}

// Japanese text per API error code (docs/api.md).  A message the server
// already wrote in Japanese (card errors, invalid values) is shown as is.
const TEXT = {
  network: 'サーバーに接続できません。ネットワークを確認してください。入力した内容は端末に保存され、接続が戻ると送信されます。',
  bad_request: '入力内容に誤りがあります。',
  not_found: '見つかりませんでした。',
  method_not_allowed: 'この操作はできません。',
  length_required: '送信に失敗しました。もう一度お試しください。',
  body_too_large: 'データが大きすぎます。',
  internal: 'サーバーで問題が発生しました。もう一度お試しください。続く場合は技術担当者へ連絡してください。',
  shutting_down: 'サーバーが停止処理中です。しばらくしてからお試しください。',
  not_logged_in: 'ログインしてください（ログインの有効期限が切れた可能性があります）。',
  csrf_failed: '画面の情報が古くなりました。もう一度ログインしてください。',
  forbidden: 'この操作をする権限がありません。',
  unknown_counter: 'その窓口は登録されていません。窓口の記号を確認してください。',
  login_failed: '職員IDまたはパスワードが違います。',
  locked: 'パスワードを続けて間違えたため、しばらくログインできません。管理者に解除を依頼してください。',
  account_not_valid: 'このアカウントは現在の期間は使用できません。',
  tablet_not_registered: 'この端末は窓口に登録されていません。管理者が登録してください。',
  no_pack: '手続パックが有効になっていません。管理者へ連絡してください。',
  case_closed: 'この案件は終了しているため、変更できません。',
  render_failed: '印刷用のPDFを作成できませんでした。',
  no_printer: 'この窓口で使えるプリンターがありません。',
  print_failed: 'プリンターが準備できていません。用紙や電源を確認して、もう一度お試しください。',
  invalid_value: '入力内容を確認してください（入力はそのまま保存されています）。',
  already_submitted: 'この申請書は提出済みのため、変更できません。',
  wrong_pin: '暗証番号が違います。',
  blocked: '暗証番号を続けて間違えたため、カードがロックされています。市民課でロックの解除を行ってください。',
  removed: '読み取り中にカードが離れました。もう一度カードを置いてください。',
  no_card: 'カードが置かれていません。カードを読み取り機に置いてください。',
  unknown_card: '読み取れないカードです。マイナンバーカード・運転免許証・在留カードを置いてください。',
  busy: '別の読み取りが進行中です。少し待ってからお試しください。',
  no_reader: 'この窓口にはカード読み取り機がありません（または停止しています）。',
  format: 'カードのデータを読み取れませんでした。',
  card: 'カードとの通信に失敗しました。置き直してください。',
  io: '読み取り機との通信に失敗しました。置き直してください。',
  no_pad: 'この窓口には署名パッドがありません。',
  pad_failed: '署名パッドから読み取れませんでした。',
  no_code: '受付票のコードが見つかりませんでした。コード全体が写るようにしてください。',
  bad_image: '画像を読み取れませんでした。',
  no_address_dictionary: '住所辞書がまだ取り込まれていません。技術担当者へ連絡してください。',
};

const JAPANESE = /[\u3040-\u30ff\u4e00-\u9fff]/;

export function errorText(err) {
  if (!err) return '';
  if (!err.code) return String(err.message || err);
  if (err.message && JAPANESE.test(err.message)) {
    const m = err.message.split(' / ')[0];
    return err.triesLeft != null && !/残り/.test(m) ? `${m}（残り${err.triesLeft}回）` : m;
  }
  let t = TEXT[err.code] || `エラーが発生しました（${err.code}）。`;
  if (err.code === 'wrong_pin' && err.triesLeft != null) t += `残り${err.triesLeft}回です。`;
  // Rule messages (English, naming the field) help staff fix the input.
  if ((err.code === 'bad_request' || err.code === 'invalid_value') && err.message) t += `（${err.message}）`;
  return t;
}

export const errorCodes = Object.keys(TEXT);

// Dates: 西暦 and 和暦 in, 'YYYY-MM-DD' out (null when not a date).
const ERAS = {明治: 1867, 大正: 1911, 昭和: 1925, 平成: 1988, 令和: 2018, M: 1867, T: 1911, S: 1925, H: 1988, R: 2018};
export function parseDate(text) {
  let s = String(text || '').trim()
    .replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0))
    .replace(/[／．－ー−]/g, '-').replace(/[/.]/g, '-').replace(/\s+/g, '').toUpperCase();
  if (!s) return null;
  let y, m, d, r;
  if ((r = /^(\d{4})(\d{2})(\d{2})$/.exec(s))) [, y, m, d] = r;
  else if ((r = /^(\d{4})(?:-|年)(\d{1,2})(?:-|月)(\d{1,2})日?$/.exec(s))) [, y, m, d] = r;
  else if ((r = /^(明治|大正|昭和|平成|令和|[MTSHR])(元|\d{1,2})(?:-|年)(\d{1,2})(?:-|月)(\d{1,2})日?$/.exec(s))) {
    y = ERAS[r[1]] + (r[2] === '元' ? 1 : Number(r[2])); m = r[3]; d = r[4];
  } else return null;
  y = Number(y); m = Number(m); d = Number(d);
  const dt = new Date(Date.UTC(y, m - 1, d));
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) return null;
  return `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

// '1986-11-15' -> '昭和61年11月15日'
export function wareki(iso) {
  const r = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || '');
  if (!r) return '';
  const [y, m, d] = [Number(r[1]), Number(r[2]), Number(r[3])];
  const k = y * 10000 + m * 100 + d;
  const era = k >= 20190501 ? ['令和', 2018] : k >= 19890108 ? ['平成', 1988] : k >= 19261225 ? ['昭和', 1925]
    : k >= 19120730 ? ['大正', 1911] : ['明治', 1867];
  const n = y - era[1];
  return `${era[0]}${n === 1 ? '元' : n}年${m}月${d}日`;
}

// '2026-11-25T06:23:44Z' -> '11/25 15:23' in local time
export function timeText(iso) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso || '';
  const p = (n) => String(n).padStart(2, '0');
  return `${t.getMonth() + 1}/${t.getDate()} ${p(t.getHours())}:${p(t.getMinutes())}`;
}

// form.js — one sheet of a case (A1, A2, G2, I1–I6, F1–F7, FM7, C2): the
// form's page image on one side (the template from the server, values laid
// over it here, so a keystroke costs no render), the fields on the other,
// each with its control.  Every value is saved as the user goes (ctx.draft);
// a value breaking a rule is kept as typed and its rule shown beside it.
import {readCard} from './card.js';

// ---- shared by the webforms screens ----------------------------------------

export function useCss() {
  if (!document.querySelector('link[data-forms-css]')) {
    const l = document.createElement('link');
    l.rel = 'stylesheet';
    l.href = '/assets/forms.css';
    l.dataset.formsCss = '1';
    document.head.append(l);
  }
}

const tplCache = new Map(); // template page images: no resident's data

// An object URL of a page image (GET …/page-N.png).  values: the page as
// printed (not kept: it holds the resident's data; the caller revokes it).
export async function pageImage(ctx, visitId, sheet, page, width, values = false, fontScale = 1) {
  const q = values ? `&values=1&font_scale=${fontScale}` : '';
  const path = `/visits/${visitId}/forms/${encodeURIComponent(sheet)}/page-${page}.png?width=${width}${q}`;
  if (!values && tplCache.has(path)) return tplCache.get(path);
  const res = await ctx.api('GET', path, undefined, {raw: true});
  const url = URL.createObjectURL(await res.blob());
  if (!values) tplCache.set(path, url);
  return url;
}

export const SOURCE = {typed: '入力', carried: '引継', card: 'カード', computed: '自動', default: '既定'};
export const MASKED = '（支援措置のため非表示）';

export function imgWidth() {
  return Math.min(2400, Math.max(600, Math.round(640 * (window.devicePixelRatio || 1) / 100) * 100));
}

// ---- dates -----------------------------------------------------------------

const ERAS = [[20190501, '令和', 2018], [19890108, '平成', 1988], [19261225, '昭和', 1925],
  [19120730, '大正', 1911], [0, '明治', 1867]];
function wareki(iso) {
  const r = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || '');
  if (!r) return iso || '';
  const y = +r[1], m = +r[2], d = +r[3];
  const e = ERAS.find((x) => y * 10000 + m * 100 + d >= x[0]);
  const n = y - e[2];
  return `${e[1]}${n === 1 ? '元' : n}年${m}月${d}日`;
}
function seireki(iso) {
  const r = /^(\d{4})-(\d{2})-(\d{2})$/.exec(iso || '');
  return r ? `${+r[1]}年${+r[2]}月${+r[3]}日` : iso || '';
}
function todayIso() {
  const t = new Date();
  return `${t.getFullYear()}-${String(t.getMonth() + 1).padStart(2, '0')}-${String(t.getDate()).padStart(2, '0')}`;
}
let dateMode = sessionStorage.getItem('mg.dateMode') || 'wareki';

// ---- the screen ------------------------------------------------------------

export default async function render(root, ctx, params) {
  useCss();
  const {h} = ctx;
  const vid = params.id, sheetId = params.sheet;
  const view = ctx.view === 'visitor' ? 'visitor' : 'staff';
  const base = `/visits/${vid}/forms/${encodeURIComponent(sheetId)}`;
  let sheet = await ctx.api('GET', `${base}?view=${view}`);
  const closed = ctx.visit && ctx.visit.status === 'closed';
  const locked = closed || !!sheet.submitted;

  const ui = new Map();      // "field|row" -> {f, row, set(value), input, src, err, fld, ov[]}
  const byId = new Map(sheet.fields.map((f) => [f.id, f]));
  let focusKey = '';
  let page = 1;
  const pages = (sheet.layout && sheet.layout.pages) || 1;
  const pw = sheet.page_size ? sheet.page_size[0] : 210, ph = sheet.page_size ? sheet.page_size[1] : 297;

  const key = (f, row) => `${f.id}|${row || 0}`;
  const tid = (f, row) => `field-${f.id}${row ? `-${row}` : ''}`;
  const valOf = (f, row) => (f.values || []).find((v) => (v.row || 0) === (row || 0)) || {value: null};

  // ---- page image and overlay ----
  const img = h('img', {testid: 'form-page-image', alt: `${sheet.name} ${page}ページ目`});
  const wrap = h('div', {class: 'page-wrap'}, img);
  const pageTabs = h('div', {class: 'page-tabs', hidden: pages < 2});
  const overlays = [];   // {el, box, k}
  async function showPage(n) {
    page = n;
    pageTabs.replaceChildren(...Array.from({length: pages}, (_, i) =>
      h('button', {class: 'btn small', type: 'button', 'aria-pressed': String(i + 1 === n),
                   on: {click: () => showPage(i + 1)}}, `${i + 1}ページ`)));
    try {
      img.src = await pageImage(ctx, vid, sheetId, n, imgWidth());
    } catch (e) {
      img.alt = ctx.errorText(e);
    }
    for (const o of overlays) o.el.hidden = o.box.page !== n;
  }
  function fontPx() {
    return (wrap.clientWidth || 500) / pw;   // px per mm
  }
  function placeOverlays() {
    const k = fontPx();
    for (const o of overlays) {
      const b = o.box;
      Object.assign(o.el.style, {left: `${(b.x / pw) * 100}%`, top: `${(b.y / ph) * 100}%`,
        width: `${(b.w / pw) * 100}%`, height: `${(b.h / ph) * 100}%`,
        fontSize: `${Math.max(6, Math.min(b.h * 0.62, 5.5) * k)}px`});
    }
  }
  for (const b of (sheet.layout ? sheet.layout.boxes : [])) {
    const [fid, half] = b.field.split('.');
    const el = h('div', {class: ['ov', b.field === '@signature' && 'sig', b.h > 11 && 'wrap'], 'aria-hidden': 'true'});
    overlays.push({el, box: b, k: b.field === '@signature' ? '@signature' : `${fid}|${b.row || 0}`, half});
    wrap.append(el);
  }
  const ro = new ResizeObserver(placeOverlays);
  ro.observe(wrap);

  function shown(f, v, half) {
    if (v.masked) return '';
    const x = v.value;
    if (x == null || x === '') return '';
    if (half) return v[half] || '';
    if (f.type === 'date') return /^\d{4}-\d{2}-\d{2}$/.test(x) ? wareki(x) : x;
    if (f.type === 'checkbox') return x === 'yes' ? '✓' : '';
    if ((f.type === 'select' || f.type === 'radio') && f.choices) {
      const c = (sheet.choices[f.choices] || []).find((c) => c.value === x);
      return c ? c.label : x;
    }
    return x;
  }
  function paintOverlay(k) {
    for (const o of overlays) {
      if (k && o.k !== k) continue;
      if (o.k === '@signature') { o.el.textContent = sheet.signature ? '（署名済）' : ''; continue; }
      const u = ui.get(o.k);
      if (!u) continue;
      o.el.textContent = u.live != null ? (o.half ? (u.liveHalf || {})[o.half] || '' : u.live) : shown(u.f, valOf(u.f, u.row), o.half);
      o.el.classList.toggle('err', !!u.bad);
      o.el.classList.toggle('focus', o.k === focusKey);
    }
  }
  function focusField(k) {
    focusKey = k;
    const o = overlays.find((x) => x.k === k);
    if (o && o.box.page !== page) showPage(o.box.page);
    for (const x of overlays) x.el.classList.toggle('focus', x.k === k);
  }

  // ---- saving ----
  function save(f, row, body) {
    if (locked) return;
    const u = ui.get(key(f, row));
    if (row) body.row = row;
    u.src.textContent = '保存中…';
    u.src.className = 'src';
    u.src.hidden = false;
    u.pending = (u.pending || 0) + 1;   // an older answer must not undo what is being sent
    // no answer soon (link down): the draft is kept and sent later
    const slow = setTimeout(() => { if (u.pending) u.src.textContent = '未送信（通信が戻ると送ります）'; }, 1500);
    ctx.draft(`form:${vid}:${sheetId}:${f.id}:${row || 0}`, 'PUT', `${base}/${f.id}`, body)
      .finally(() => { clearTimeout(slow); u.pending--; })
      .then((s) => apply(s, null))
      .catch((e) => {
        if (e.status === 422 && e.body && e.body.form) apply(e.body.form, {k: key(f, row), msg: e.body.error.message});
        else { ctx.toast(ctx.errorText(e), 'error'); showErr(u, ctx.errorText(e), false); }
      });
  }

  function showErr(u, msg, missing) {
    u.err.textContent = msg || '';
    u.err.hidden = !msg;
    u.err.classList.toggle('missing', !!missing);
    u.bad = !!msg && !missing;
    u.fld.classList.toggle('bad', u.bad);
  }

  // A new state of the sheet: marks, errors and values of every field; the
  // field being typed in keeps what is in it.
  function apply(s, invalid) {
    sheet = Object.assign(sheet, {fields: s.fields, filled: s.filled, missing: s.missing, errors: s.errors,
                                  signature: s.signature});
    for (const f of s.fields) byId.set(f.id, f);
    for (const [k, u] of ui) {
      const f = byId.get(u.f.id);
      if (!f) continue;
      u.f = f;
      const v = valOf(f, u.row);
      u.live = null;
      u.liveHalf = null;
      const label = v.value != null && v.value !== '' ? SOURCE[v.source] : '';
      u.src.textContent = label || '';
      u.src.className = `src ${v.source || ''}`;
      u.src.hidden = !label;
      u.src.title = v.source === 'carried' ? `${v.from === 'household' ? '世帯の入力' : v.from}から` : '';
      const msg = invalid && invalid.k === k ? invalid.msg : v.error;
      showErr(u, msg ? msg.replace(/^「[^」]*」:\s*/, '') : '', v.value == null && !!v.error && !(invalid && invalid.k === k));
      const active = u.inputs && u.inputs.includes(document.activeElement);
      if (!active && !u.pending && u.set) u.set(v);
    }
    counts();
    paintOverlay();
  }

  // ---- controls ----
  function control(f, row) {
    const k = key(f, row), id = tid(f, row);
    const v = valOf(f, row);
    const u = {f, row, inputs: []};
    ui.set(k, u);
    const lab = h('label', {for: id}, f.label);
    u.src = h('span', {class: 'src', testid: `${id}-source`, hidden: true});
    u.err = h('div', {class: 'fld-err', testid: `${id}-error`, role: 'alert', hidden: true});
    const head = h('div', {class: 'fld-head'}, lab, f.required ? h('span', {class: 'req'}, '必須') : null, u.src);
    const ro = locked || f.computed || v.masked;
    let body;
    const onFocus = () => focusField(k);
    const live = (t) => { u.live = t; paintOverlay(k); };
    const text = (extra = {}) => {
      const i = h('input', Object.assign({type: 'text', id, testid: id, autocomplete: 'off', disabled: ro,
        on: {focus: onFocus, input: () => live(i.value), change: () => save(f, row, {value: i.value})}}, extra));
      u.inputs.push(i);
      return i;
    };
    if (v.masked) {
      body = h('div', {class: 'fld-ro masked', testid: id}, MASKED);
    } else if (f.computed) {
      const d = h('div', {class: 'fld-ro', testid: id});
      u.set = (x) => { d.textContent = shown(u.f, x) || '—'; };
      body = d;
    } else if (f.type === 'name_split') {
      const mk = (half, label) => {
        const i = h('input', {type: 'text', id: `${id}-${half}`, testid: `${id}-${half}`, autocomplete: 'off',
          disabled: ro, 'aria-label': `${f.label} ${label}`,
          on: {focus: onFocus, input: () => { u.liveHalf = {family: fam.value, given: giv.value}; u.live = ''; paintOverlay(k); },
               change: () => save(f, row, {family: fam.value, given: giv.value})}});
        u.inputs.push(i);
        return i;
      };
      const fam = mk('family', '姓'), giv = mk('given', '名');
      lab.htmlFor = `${id}-family`;
      u.set = (x) => { fam.value = x.family || ''; giv.value = x.given || ''; };
      body = h('div', {class: 'split'}, h('span', {}, '姓'), fam, h('span', {}, '名'), giv);
    } else if (f.type === 'date') {
      const i = text({placeholder: dateMode === 'wareki' ? '例：令和8年4月1日' : '例：2026年4月1日', inputmode: 'text'});
      u.set = (x) => {
        const val = x.value || '';
        i.value = /^\d{4}-\d{2}-\d{2}$/.test(val) ? (dateMode === 'wareki' ? wareki(val) : seireki(val)) : val;
      };
      const today = h('button', {class: 'btn small', type: 'button', disabled: ro, testid: `${id}-today`,
        on: {click: () => { i.value = dateMode === 'wareki' ? wareki(todayIso()) : seireki(todayIso()); live(i.value); save(f, row, {value: todayIso()}); }}}, '今日');
      body = h('div', {class: 'fld-row'}, i, today);
    } else if (f.type === 'select') {
      const s = h('select', {id, testid: id, disabled: ro, on: {focus: onFocus,
        change: () => { live(s.selectedOptions[0] ? s.selectedOptions[0].textContent : ''); save(f, row, {value: s.value}); }}});
      u.inputs.push(s);
      u.set = (x) => {
        let list = sheet.choices[f.choices] || [];
        if (f.parent) {
          const p = byId.get(f.parent);
          const pv = p ? valOf(p, row).value || valOf(p, 0).value : null;
          list = pv ? list.filter((c) => c.parent === pv) : [];
        }
        s.replaceChildren(h('option', {value: ''}, f.parent && !list.length ? `先に「${(byId.get(f.parent) || {}).label || ''}」を選んでください` : '選んでください'),
          ...list.map((c) => h('option', {value: c.value, selected: c.value === x.value}, c.label)));
        if (x.value && !list.some((c) => c.value === x.value)) s.append(h('option', {value: x.value, selected: true}, x.value));
      };
      body = s;
    } else if (f.type === 'radio') {
      const box = h('div', {class: 'choices', role: 'radiogroup', 'aria-labelledby': `${id}-l`, testid: id});
      lab.id = `${id}-l`;
      u.set = (x) => {
        box.replaceChildren(...(sheet.choices[f.choices] || []).map((c) => {
          const r = h('input', {type: 'radio', name: id, value: c.value, checked: c.value === x.value, disabled: ro,
            testid: `${id}-${c.value}`,
            on: {focus: onFocus, change: () => { live(c.label); save(f, row, {value: c.value}); }}});
          u.inputs.push(r);
          return h('label', {class: 'choice'}, r, c.label);
        }));
      };
      body = box;
    } else if (f.type === 'checkbox') {
      const c = h('input', {type: 'checkbox', id, testid: id, disabled: ro,
        on: {focus: onFocus, change: () => { live(c.checked ? '✓' : ''); save(f, row, {value: c.checked ? 'yes' : 'no'}); }}});
      u.inputs.push(c);
      u.set = (x) => { c.checked = x.value === 'yes'; };
      body = h('label', {class: 'choice'}, c, 'はい');
    } else if (f.type === 'postal_code') {
      const i = text({inputmode: 'numeric', placeholder: '例：745-0004'});
      const b = h('button', {class: 'btn small', type: 'button', testid: `postal-lookup-${f.id}${row ? `-${row}` : ''}`, disabled: ro,
        on: {click: () => postal(f, row, i, picks)}}, '住所を表示');
      const picks = h('div', {class: 'picks'});
      i.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); postal(f, row, i, picks); } });
      u.set = (x) => { i.value = x.value || ''; };
      body = h('div', {}, h('div', {class: 'fld-row'}, i, b), picks);
    } else if (f.type === 'address') {
      const i = text({placeholder: '町名まで入れて「検索」、番地を続けて入力'});
      const picks = h('div', {class: 'picks'});
      const b = h('button', {class: 'btn small', type: 'button', testid: `address-search-${f.id}${row ? `-${row}` : ''}`, disabled: ro,
        on: {click: () => search(f, row, i, picks)}}, '検索');
      u.set = (x) => { i.value = x.value || ''; };
      body = h('div', {}, h('div', {class: 'fld-row'}, i, b), picks);
    } else {
      const mode = {number: 'numeric', mynumber: 'numeric', resident_code: 'numeric', phone: 'tel'}[f.type];
      const i = text({inputmode: mode || null});
      u.set = (x) => { i.value = x.value == null ? '' : x.value; };
      body = i;
    }
    u.fld = h('div', {class: 'fld', dataset: {field: f.id}}, head, body, u.err);
    return u.fld;
  }

  // Postal code → address (I1, F3): one town fills the paired address field.
  async function postal(f, row, input, picks) {
    picks.replaceChildren();
    const code = input.value.trim();
    if (!code) return;
    let r;
    try { r = await ctx.api('GET', `/address/postal/${encodeURIComponent(code)}`); } catch (e) {
      showErr(ui.get(key(f, row)), ctx.errorText(e), false);
      return;
    }
    save(f, row, {value: code});
    const target = addressFor(f);
    const list = r.addresses || [];
    if (!list.length) { showErr(ui.get(key(f, row)), 'この郵便番号の住所が見つかりません。番号を確認してください。', false); return; }
    if (!target) return;
    const put = (a) => fillAddress(target, row, `${a.pref}${a.city}${a.town}`);
    if (list.length === 1) put(list[0]);
    else picks.replaceChildren(...list.slice(0, 8).map((a) =>
      h('button', {class: 'pick', type: 'button', on: {click: () => { picks.replaceChildren(); put(a); }}},
        `${a.pref}${a.city}${a.town}`, a.note ? h('small', {}, a.note) : null)));
  }
  function addressFor(f) {
    const cand = f.id.replace(/postal_code$/, 'address');
    if (byId.get(cand) && byId.get(cand).type === 'address') return byId.get(cand);
    const i = sheet.fields.indexOf(f);
    return sheet.fields.slice(i + 1).find((x) => x.type === 'address' && (x.group || '') === (f.group || ''));
  }
  function postalFor(f) {
    const cand = f.id.replace(/address$/, 'postal_code');
    const p = byId.get(cand);
    return p && p.type === 'postal_code' ? p : null;
  }
  function fillAddress(target, row, text) {
    const u = ui.get(key(target, target.group ? row : 0));
    if (!u || !u.inputs[0]) return;
    const i = u.inputs[0];
    i.value = text;
    u.live = text;
    paintOverlay(key(target, target.group ? row : 0));
    save(target, target.group ? row : 0, {value: text});
    i.focus();
    i.setSelectionRange(text.length, text.length);   // the visitor goes on with 番地
  }
  async function search(f, row, input, picks) {
    const q = input.value.trim();
    picks.replaceChildren();
    if (!q) return;
    let r;
    try { r = await ctx.api('GET', `/address/search?q=${encodeURIComponent(q)}&limit=8`); } catch (e) {
      showErr(ui.get(key(f, row)), ctx.errorText(e), false);
      return;
    }
    const list = r.addresses || [];
    if (!list.length) { picks.append(h('p', {class: 'muted'}, '見つかりませんでした。')); return; }
    picks.replaceChildren(...list.map((a) => h('button', {class: 'pick', type: 'button', on: {click: () => {
      picks.replaceChildren();
      fillAddress(f, row, `${a.pref}${a.city}${a.town}`);
      const p = postalFor(f);
      const pu = p && ui.get(key(p, p.group ? row : 0));
      if (pu && pu.inputs[0] && !pu.inputs[0].value) {
        pu.inputs[0].value = a.postal_code;
        save(p, p.group ? row : 0, {value: a.postal_code});
      }
    }}}, `〒${a.postal_code.slice(0, 3)}-${a.postal_code.slice(3)} ${a.pref}${a.city}${a.town}`,
    a.district ? h('small', {}, `地区：${a.district}`) : null)));
  }

  // ---- building the screen ----
  const counter = h('span', {class: 'row'});
  function counts() {
    counter.replaceChildren(
      h('span', {class: 'badge'}, `入力済 ${sheet.filled}`),
      h('span', {class: ['badge', sheet.missing ? 'warn' : 'ok']}, `未入力（必須） ${sheet.missing}`),
      h('span', {class: ['badge', sheet.errors ? 'danger' : 'ok']}, `要確認 ${sheet.errors}`));
  }
  const loose = sheet.fields.filter((f) => !f.group);
  const groups = sheet.groups || [];
  const fieldsEl = h('div', {class: 'fields'});
  fieldsEl.append(h('section', {class: 'fgroup'}, h('h2', {}, '記入する項目'), loose.map((f) => control(f, 0))));
  for (const g of groups) {
    const gf = sheet.fields.filter((f) => f.group === g.name);
    for (let r = 1; r <= g.rows; r++)
      fieldsEl.append(h('section', {class: 'fgroup', dataset: {row: r}},
        h('h2', {}, `${g.first_row + r - 1}人目`), gf.map((f) => control(f, r))));
  }
  const people = (ctx.visit && ctx.visit.people) || [];
  const cardBtn = !locked && ctx.view !== 'visitor' && people.length
    ? h('button', {class: 'btn', type: 'button', testid: 'form-card',
      on: {click: async () => {
        const st = await readCard(ctx, vid, 1);
        if (st) apply(await ctx.api('GET', `${base}?view=${view}`), null);
      }}}, 'カードで読み取る') : null;
  const seg = h('div', {class: 'seg', role: 'group', 'aria-label': '日付の表示'},
    ['wareki', 'seireki'].map((m) => h('button', {type: 'button', 'aria-pressed': String(dateMode === m), testid: `date-mode-${m}`,
      on: {click: (e) => {
        dateMode = m;
        sessionStorage.setItem('mg.dateMode', m);
        for (const b of seg.children) b.setAttribute('aria-pressed', String(b === e.currentTarget));
        apply(sheet, null);
      }}}, m === 'wareki' ? '和暦' : '西暦')));

  root.append(...[
    h('div', {class: 'form-top'},
      h('button', {class: 'btn small', type: 'button', testid: 'form-back', on: {click: () => ctx.go(`#/visit/${vid}/forms`)}}, '← 申請書の一覧'),
      h('h1', {class: 'grow'}, sheet.name, sheet.sheets > 1 ? ` （${sheet.sheet}枚目／${sheet.sheets}枚）` : ''),
      counter, seg, cardBtn),
    locked ? h('p', {class: 'notice info'}, sheet.submitted ? 'この申請書は提出済みです。変更できません。' : 'この案件は終了しています。') : null,
    ctx.view === 'visitor' ? h('p', {class: 'notice info'}, '太枠の項目をご確認ください。カードや前の申請書で分かっている項目は入力済みです。') : null,
    h('div', {class: 'form-layout'},
      h('div', {class: 'page-pane'}, pageTabs, wrap),
      fieldsEl)].filter(Boolean));
  apply(sheet, null);
  showPage(1);
  placeOverlays();
  return () => ro.disconnect();
}

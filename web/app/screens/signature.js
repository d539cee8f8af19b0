// signature.js — the visitor signs once (S1): on the tablet with Pointer
// Events (pen pressure where the device gives it; touch-action: none so the
// page does not scroll), or on the counter's signature pad, whose strokes
// arrive live as pad.stroke events.  The server turns the raw samples into
// the case's one signature and answers with a PNG of what will print; it
// then shows in every @signature slot of every form (page previews below).
import {useCss, pageImage} from './form.js';

export default async function render(root, ctx, params) {
  useCss();
  const {h} = ctx;
  const vid = params.id;
  const closed = ctx.visit && ctx.visit.status === 'closed';
  let strokes = [];          // [[x, y, pressure, t], …] per stroke, CSS px
  let cur = null, t0 = 0, padStrokes = [];
  const urls = [];

  const canvas = h('canvas', {testid: 'signature-canvas', 'aria-label': 'ここに署名してください（指またはペン）', role: 'img'});
  const area = h('div', {class: 'sig-area'}, canvas, h('div', {class: 'sig-line'}), h('div', {class: 'sig-hint'}, '枠の中にお名前を書いてください'));
  const preview = h('img', {class: 'sig-preview', testid: 'signature-preview', alt: '印刷される署名', hidden: true});
  const status = h('p', {class: 'muted', role: 'status'});
  const pagesEl = h('div', {class: 'sig-pages'});
  const g = canvas.getContext('2d');

  function size() {
    const r = canvas.getBoundingClientRect(), k = window.devicePixelRatio || 1;
    canvas.width = Math.round(r.width * k);
    canvas.height = Math.round(r.height * k);
    g.setTransform(k, 0, 0, k, 0, 0);
    redraw();
  }
  function line(pts, w) {
    g.lineCap = g.lineJoin = 'round';
    g.strokeStyle = '#10204a';
    for (let i = 1; i < pts.length; i++) {
      g.lineWidth = w(pts[i]);
      g.beginPath();
      g.moveTo(pts[i - 1][0], pts[i - 1][1]);
      g.lineTo(pts[i][0], pts[i][1]);
      g.stroke();
    }
    if (pts.length === 1) { g.beginPath(); g.arc(pts[0][0], pts[0][1], 1.5, 0, 7); g.fill(); }
  }
  function redraw() {
    const r = canvas.getBoundingClientRect();
    g.clearRect(0, 0, r.width, r.height);
    for (const s of strokes) line(s, (p) => (p[2] < 0 ? 3 : 1.5 + p[2] * 4));
    // the pad's strokes: 0..1 of the pad, drawn into the same box
    for (const s of padStrokes) line(s.map((p) => [p[0] * r.width, p[1] * r.height, p[2]]), (p) => (p[2] < 0 ? 3 : 1.5 + p[2] * 4));
  }
  function pos(e) {
    const r = canvas.getBoundingClientRect();
    const p = e.pointerType === 'mouse' || !e.pressure ? -1 : Math.min(1, Math.max(0, e.pressure));
    return [Math.round((e.clientX - r.left) * 10) / 10, Math.round((e.clientY - r.top) * 10) / 10, p,
      Math.max(0, Math.round(e.timeStamp - t0))];
  }
  canvas.addEventListener('pointerdown', (e) => {
    if (closed) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    if (!strokes.length) t0 = e.timeStamp;
    padStrokes = [];
    cur = [pos(e)];
    strokes.push(cur);
    redraw();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!cur) return;
    const evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const x of evs.length ? evs : [e]) {
      const p = pos(x);
      const last = cur[cur.length - 1];
      if (p[3] < last[3]) p[3] = last[3];
      cur.push(p);
    }
    redraw();
  });
  const up = () => { cur = null; };
  canvas.addEventListener('pointerup', up);
  canvas.addEventListener('pointercancel', up);

  async function pages() {
    urls.splice(0).forEach((u) => URL.revokeObjectURL(u));
    let list;
    try { list = await ctx.api('GET', `/visits/${vid}/forms`); } catch { return; }
    pagesEl.replaceChildren();
    const withSig = list.forms.slice(0, 8);
    for (const f of withSig) {
      const img = h('img', {alt: `${f.name}（署名の入った印刷イメージ）`});
      pagesEl.append(h('figure', {}, img, h('figcaption', {class: 'small-text'}, f.name)));
      pageImage(ctx, vid, f.id, 1, 500, true).then((u) => { urls.push(u); img.src = u; }).catch(() => {});
    }
  }
  function done(r) {
    preview.src = `data:image/png;base64,${r.png}`;
    preview.hidden = false;
    status.textContent = `署名を保存しました（${r.strokes}画）。すべての申請書の署名欄に印刷されます。`;
    ctx.toast('署名を保存しました。');
    pages();
  }

  const save = h('button', {class: 'btn primary big', type: 'button', testid: 'signature-save', disabled: closed,
    on: {click: async () => {
      if (!strokes.length) { ctx.toast('署名が書かれていません。', 'error'); return; }
      const r = canvas.getBoundingClientRect();
      save.disabled = true;
      try {
        done(await ctx.api('POST', `/visits/${vid}/signature/strokes`,
          {width: Math.round(r.width), height: Math.round(r.height), strokes}));
      } catch (e) {
        ctx.toast(ctx.errorText(e), 'error');
      } finally {
        save.disabled = false;
      }
    }}}, 'この署名で決定');
  const clear = h('button', {class: 'btn big', type: 'button', testid: 'signature-clear',
    on: {click: () => { strokes = []; padStrokes = []; redraw(); }}}, '書き直す');
  const pad = h('button', {class: 'btn', type: 'button', testid: 'signature-pad-take', disabled: closed,
    on: {click: async () => {
      try {
        done(await ctx.api('POST', `/visits/${vid}/signature/pad`));
        strokes = [];
        padStrokes = [];
        redraw();
      } catch (e) {
        ctx.toast(ctx.errorText(e), 'error');
      }
    }}}, '署名パッドの署名を使う');
  const offs = [
    ctx.ws.on('pad.stroke', (d) => { if (d.points) { strokes = []; padStrokes.push(d.points); redraw(); } }),
    ctx.ws.on('pad.proximity', (d) => { area.classList.toggle('pen-near', !!d.in); }),
  ];

  root.append(...[
    h('div', {class: 'screen-head'}, h('div', {}, h('h1', {}, '署名'),
      h('p', {}, '一度だけ署名してください。すべての申請書の署名欄に同じ署名が入ります。'))),
    area,
    h('div', {class: 'row between'}, h('div', {class: 'row'}, clear, save), pad),
    h('div', {class: 'row'}, preview, status),
    h('h2', {}, '署名欄の入った申請書'), pagesEl].filter(Boolean));
  const ro = new ResizeObserver(size);
  ro.observe(canvas);
  size();
  let state = null;
  try { state = await ctx.api('GET', `/visits/${vid}/forms`); } catch { /* shown by pages() */ }
  if (state && state.signature) { status.textContent = 'この案件には署名があります。書き直すと置き換わります。'; pages(); }
  return () => {
    ro.disconnect();
    offs.forEach((off) => off());
    urls.forEach((u) => URL.revokeObjectURL(u));
  };
}

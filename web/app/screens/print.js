// print.js — preview, print and download the case's forms (P1, P2): a page
// image of every sheet as it will print, print or download one sheet or the
// whole bundle, the print size (font_scale 0.5–2.0), and the printer's job
// state from print.job events.
import {useCss, pageImage} from './form.js';

const JOB = {pending: '順番待ち', 'pending-held': '保留中', processing: '印刷中', 'processing-stopped': '停止中',
  canceled: '取り消されました', aborted: '中断されました', completed: '印刷が終わりました'};

export default async function render(root, ctx, params) {
  useCss();
  const {h} = ctx;
  const vid = params.id;
  const list = await ctx.api('GET', `/visits/${vid}/forms`);
  let scale = Number(sessionStorage.getItem('mg.fontScale')) || 1;
  const urls = [];
  const status = h('p', {class: 'print-status', testid: 'print-status', role: 'status', 'aria-live': 'polite'});
  const previews = h('div', {class: 'previews'});

  const range = h('input', {type: 'range', min: '0.5', max: '2', step: '0.1', value: String(scale), testid: 'font-scale',
    'aria-label': '印刷する文字の大きさ',
    on: {input: () => { label.textContent = `${Math.round(range.value * 100)}%`; },
         change: () => { scale = Number(range.value); sessionStorage.setItem('mg.fontScale', String(scale)); paint(); }}});
  const label = h('span', {class: 'badge'}, `${Math.round(scale * 100)}%`);

  async function print(path, what) {
    status.textContent = `${what}を印刷に送っています…`;
    try {
      const r = await ctx.api('POST', path, {font_scale: scale});
      const st = r.result && r.result.state;
      status.textContent = `${what}を印刷しました${st ? `（${JOB[st] || st}）` : ''}。`;
    } catch (e) {
      status.textContent = ctx.errorText(e);
      ctx.toast(ctx.errorText(e), 'error');
    }
  }
  async function download(path, name) {
    status.textContent = 'PDFを作っています…';
    try {
      const res = await ctx.api('GET', `${path}?font_scale=${scale}`, undefined, {raw: true});
      const url = URL.createObjectURL(await res.blob());
      const a = h('a', {href: url, download: name});
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
      status.textContent = 'PDFを保存しました。';
    } catch (e) {
      status.textContent = ctx.errorText(e);
    }
  }

  function paint() {
    urls.splice(0).forEach((u) => URL.revokeObjectURL(u));
    previews.replaceChildren(...list.forms.map((f) => {
      const s = f.id, enc = encodeURIComponent(s);
      const imgs = Array.from({length: f.pages || 1}, (_, i) => {
        const img = h('img', {alt: `${f.name} ${i + 1}ページ目の印刷イメージ`, testid: i ? null : `preview-${s}`});
        pageImage(ctx, vid, s, i + 1, 600, true, scale).then((u) => { urls.push(u); img.src = u; })
          .catch((e) => { img.alt = ctx.errorText(e); });
        return img;
      });
      return h('div', {class: 'preview'},
        h('h2', {}, f.name, f.sheets > 1 ? ` （${f.sheet}枚目）` : ''), imgs,
        h('div', {class: 'row'},
          h('button', {class: 'btn small', type: 'button', testid: `print-${s}`,
            on: {click: () => print(`/visits/${vid}/forms/${enc}/print`, f.name)}}, '印刷'),
          h('button', {class: 'btn small', type: 'button', testid: `download-${s}`,
            on: {click: () => download(`/visits/${vid}/forms/${enc}/pdf`, `${s}.pdf`)}}, 'PDFを保存')));
    }));
    if (!list.forms.length) previews.append(h('p', {class: 'notice info'}, '印刷する申請書がありません。'));
  }

  const off = ctx.ws.on('print.job', (d) => {
    if (d.state) status.textContent = `プリンター：${JOB[d.state] || d.state}${d.job != null ? `（受付${d.job}）` : ''}`;
  });

  root.append(...[
    h('div', {class: 'screen-head'},
      h('div', {}, h('h1', {}, '確認・印刷'), h('p', {}, '印刷される内容を確認してください。')),
      h('div', {class: 'row'},
        h('button', {class: 'btn primary big', type: 'button', testid: 'print-bundle', disabled: !list.forms.length,
          on: {click: () => print(`/visits/${vid}/bundle/print`, 'すべての申請書')}}, 'すべて印刷'),
        h('button', {class: 'btn big', type: 'button', testid: 'download-bundle', disabled: !list.forms.length,
          on: {click: () => download(`/visits/${vid}/bundle.pdf`, 'bundle.pdf')}}, 'まとめてPDF'))),
    h('div', {class: 'panel fs-row'}, h('strong', {}, '印刷の文字の大きさ'), range, label,
      h('span', {class: 'muted small-text'}, '文字は枠に収まるように自動で調整されます。')),
    status, list.signature ? null : h('p', {class: 'notice'}, 'まだ署名がありません。「署名」で署名してください。'),
    previews].filter(Boolean));
  paint();
  return () => { off(); urls.forEach((u) => URL.revokeObjectURL(u)); };
}

// forms.js — the case's form sheets (A1, A3, I4, FM8): filled / missing /
// errors per sheet, open one, add a form the counter may open, copy a form
// for more rows, remove a sheet; and the 書かない窓口 figure, the printed
// values by where they came from.
import {useCss} from './form.js';

const SHEET_SRC = {auto: '案内から', added: '追加', copy: 'コピー', overflow: '続き（自動）'};

export default async function render(root, ctx, params) {
  useCss();
  const {h} = ctx;
  const vid = params.id;
  const closed = ctx.visit && ctx.visit.status === 'closed';
  const staff = ctx.view !== 'visitor';
  let state = await ctx.api('GET', `/visits/${vid}/forms`);

  const list = h('div', {class: 'sheets'});
  const figure = h('div', {class: 'kakanai', 'aria-label': '書かない窓口：印字される項目の出どころ'});
  const addBox = h('div', {class: 'add-form'});

  async function act(method, path, body, okText) {
    try {
      const r = await ctx.api(method, path, body);
      state = r.forms && !Array.isArray(r.forms) ? r.forms : r;
      paint();
      if (okText) ctx.toast(okText);
      return r;
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
      return null;
    }
  }

  function paint() {
    const v = state.values || {};
    const cell = (k, label, hl) => h('div', {class: hl ? 'hl' : ''}, h('span', {}, label),
      h('b', {testid: `values-${k}`}, String(v[k] || 0)));
    const auto = (v.carried || 0) + (v.card || 0) + (v.computed || 0) + (v.default || 0);
    figure.replaceChildren(
      cell('typed', 'この窓口で入力'), cell('carried', '引継（他の申請書・世帯）', true), cell('card', 'カードから', true),
      cell('computed', '自動計算'), cell('default', '既定値'),
      h('div', {class: 'hl'}, h('span', {}, '書かずに済んだ項目'), h('b', {}, `${auto}`)));
    list.replaceChildren(...state.forms.map((f) => {
      const s = f.id;
      const sub = !!f.submitted;
      return h('div', {class: ['sheet-card', sub && 'submitted']},
        h('button', {class: 'sheet-open', type: 'button', testid: `sheet-${s}`,
                     on: {click: () => ctx.go(`#/visit/${vid}/forms/${encodeURIComponent(s)}`)}},
          h('strong', {}, f.name, f.sheets > 1 ? ` （${f.sheet}枚目）` : ''),
          h('span', {class: 'counts'},
            h('span', {class: 'badge'}, SHEET_SRC[f.source] || f.source),
            h('span', {class: 'badge'}, `入力済 ${f.filled}`),
            h('span', {class: ['badge', f.missing ? 'warn' : 'ok']}, f.missing ? `未入力（必須） ${f.missing}` : '必須項目 OK'),
            f.errors ? h('span', {class: 'badge danger'}, `要確認 ${f.errors}`) : null,
            sub ? h('span', {class: 'badge ok'}, '提出済') : null)),
        staff && !closed ? h('div', {class: 'sheet-tools'},
          h('button', {class: 'btn small', type: 'button', testid: `sheet-${s}-copy`, disabled: sub,
            'aria-label': `${f.name}をコピー`,
            on: {click: () => act('POST', `/visits/${vid}/forms/${encodeURIComponent(s)}/copy`, undefined, 'コピーしました（次の人の分）。')}}, 'コピー'),
          h('button', {class: 'btn small danger', type: 'button', testid: `sheet-${s}-remove`, disabled: sub,
            'aria-label': `${f.name}を削除`,
            on: {click: async () => {
              const {confirmBox} = await import('../ui.js');
              if (await confirmBox(`「${f.name}${f.sheets > 1 ? ` ${f.sheet}枚目` : ''}」を外しますか。入力した内容は案件に残ります。`, '外す', 'やめる'))
                act('DELETE', `/visits/${vid}/forms/${encodeURIComponent(s)}`, undefined, '外しました。');
            }}}, '外す')) : null);
    }));
    if (!state.forms.length) list.append(h('p', {class: 'notice info'}, 'この案件にはまだ申請書がありません。'));
    paintAdd();
  }

  // The server lists the pack's forms this counter may open that are not
  // open yet (`addable`, FM8).
  function paintAdd() {
    const addable = state.addable || [];
    if (!staff || closed || !addable.length) { addBox.hidden = true; return; }
    addBox.hidden = false;
    const sel = h('select', {testid: 'form-add-select', 'aria-label': '追加する申請書'},
      h('option', {value: ''}, '申請書を選んでください'),
      addable.map((f) => h('option', {value: f.id}, f.name)));
    addBox.replaceChildren(h('strong', {}, '申請書を追加'), sel,
      h('button', {class: 'btn primary', type: 'button', testid: 'form-add',
        on: {click: async () => {
          if (!sel.value) { ctx.toast('追加する申請書を選んでください。', 'error'); return; }
          const r = await act('POST', `/visits/${vid}/forms`, {form: sel.value}, '追加しました。');
          if (r && r.added) ctx.go(`#/visit/${vid}/forms/${encodeURIComponent(r.added)}`);
        }}}, '追加'));
  }

  root.append(...[
    h('div', {class: 'screen-head'},
      h('div', {}, h('h1', {}, '申請書'),
        h('p', {}, 'カードや世帯の入力、ほかの申請書から分かっている項目は入力済みです。開いて確認・入力してください。'))),
    figure, list, addBox].filter(Boolean));
  paint();
}

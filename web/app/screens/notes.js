// notes.js — staff notes and the memo history that follows the case (C1);
// the support-measure flag per person, masking and a supervisor's unmask
// with a stated reason (C2); closing the case (D1).
import {fill, timeText, confirmBox} from '../ui.js';

export default async function render(root, ctx, params) {
  const {h} = ctx;
  const id = params.id;
  const role = ctx.session.user.role;
  const supervisor = role === 'supervisor' || role === 'administrator';

  const history = h('ol', {class: 'timeline', 'aria-live': 'polite'});
  const people = h('div', {});
  const mask = h('div', {});
  const text = h('textarea', {testid: 'note-text', maxLength: 2000, rows: 4, placeholder: '例: 転出証明書は持参済み。',
                              'aria-label': '新しいメモ'});
  const addBtn = h('button', {class: 'btn primary', type: 'submit', testid: 'note-add'}, 'メモを残す');
  const reason = h('textarea', {testid: 'unmask-reason', rows: 2, maxLength: 500, 'aria-label': '表示する理由',
                                placeholder: '例: 本人確認のうえ児童手当の送付先確認'});
  const unmaskBtn = h('button', {class: 'btn', type: 'button', testid: 'unmask', disabled: !supervisor}, '理由を記録して住所を表示');

  async function act(btn, method, path, body, done) {
    btn.disabled = true;
    try {
      ctx.setVisit(await ctx.api(method, path, body));
      draw();
      if (done) ctx.toast(done);
      return true;
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
      return false;
    } finally {
      if (btn.isConnected) btn.disabled = btn === unmaskBtn ? !supervisor : false;
    }
  }

  function draw() {
    const v = ctx.visit;
    const closed = v.status === 'closed';
    fill(history, v.notes.map((n, i) => h('li', {testid: `note-${i}`},
      h('div', {class: 'meta'}, `${timeText(n.at)}　${n.author}（${n.counter}）`),
      h('div', {class: 'text'}, n.text))));
    if (!v.notes.length) history.append(h('li', {class: 'muted'}, 'まだメモはありません'));
    text.disabled = addBtn.disabled = closed;

    const s = v.support;
    fill(mask,
      s.masked_here ? h('div', {class: 'notice', role: 'note'},
        h('p', {}, h('b', {}, '住所を非表示にしています。'),
          ` この世帯は支援措置の対象です（${s.counter} で設定）。この窓口では住所を表示せず、受付票にも印刷しません。`),
        h('label', {class: 'field'}, h('span', {}, '表示する理由（監督者のみ・記録に残ります）'), reason),
        h('div', {class: 'row end'}, supervisor ? null : h('span', {class: 'muted small-text'}, '監督者の職員がログインして操作してください'), unmaskBtn))
      : s.unmasked_until ? h('div', {class: 'notice info'}, `監督者の操作により、${timeText(s.unmasked_until)} までこの窓口で住所を表示しています。`)
      : s.counter ? h('div', {class: 'notice info'}, `支援措置の対象者がいます（${s.counter} で設定）。ほかの窓口では住所が非表示になります。`)
      : null);

    fill(people, v.people.map((p, i) => {
      const sw = h('button', {class: 'switch', type: 'button', role: 'switch', testid: `support-${i}`,
                              'aria-checked': String(!!p.support), disabled: closed,
                              'aria-label': `${p.name || `${i + 1}人目`} 支援措置`},
        h('span', {class: 'switch-track', 'aria-hidden': 'true'}, h('span', {class: 'switch-knob'})),
        h('span', {class: 'switch-label'}, p.support ? '支援措置あり' : '支援措置なし'));
      sw.addEventListener('click', async () => {
        const on = !p.support;
        if (!on && !supervisor) { ctx.toast('支援措置の解除は監督者のみができます。', 'error'); return; }
        if (on && !(await confirmBox(`${p.name || `${i + 1}人目`} さんを支援措置の対象にします。ほかの窓口では世帯全員の住所が非表示になります。よろしいですか。`, '対象にする'))) return;
        act(sw, 'POST', `/visits/${id}/support`, {person: i, on}, on ? '支援措置を設定しました' : '支援措置を解除しました');
      });
      return h('div', {class: 'support-row'},
        h('div', {class: 'grow'}, h('b', {}, p.name || `${i + 1}人目`), ' ', h('span', {class: 'muted small-text'}, p.kana || ''),
          h('div', {class: 'small-text'}, p.address_masked ? h('span', {class: 'masked'}, '住所: 非表示（支援措置）')
            : `住所: ${p.address || '（未入力）'}`)),
        sw);
    }));
    if (!v.people.length) people.append(h('p', {class: 'muted'}, '世帯の人がまだ入力されていません。'));
  }

  unmaskBtn.addEventListener('click', async () => {
    const r = reason.value.trim();
    if (r.length < 4) { ctx.toast('理由を4文字以上で入力してください。', 'error'); reason.focus(); return; }
    if (await act(unmaskBtn, 'POST', `/visits/${id}/unmask`, {reason: r}, '住所を表示しました（記録に残りました）')) reason.value = '';
  });
  const form = h('form', {novalidate: true}, h('label', {class: 'field'}, h('span', {}, '新しいメモ（どの窓口でも見られます）'), text),
    h('div', {class: 'row end', style: {marginTop: '.6rem'}}, addBtn));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = text.value.trim();
    if (!t) { ctx.toast('メモを入力してください。', 'error'); text.focus(); return; }
    if (await act(addBtn, 'POST', `/visits/${id}/notes`, {text: t}, 'メモを残しました')) text.value = '';
  });
  const endBtn = h('button', {class: 'btn danger', type: 'button', testid: 'visit-end'}, 'この案件を終了する');
  endBtn.addEventListener('click', async () => {
    if (!(await confirmBox('この案件を終了します。終了後は表示と印刷だけができます。よろしいですか。', '終了する'))) return;
    if (await act(endBtn, 'POST', `/visits/${id}/close`, undefined, '案件を終了しました')) endBtn.disabled = true;
  });
  if (ctx.visit.status === 'closed') endBtn.disabled = true;

  root.append(
    h('div', {class: 'screen-head'}, h('div', {}, h('h1', {}, '職員メモ・支援措置'),
      h('p', {}, 'この画面は職員用です。メモは案件と一緒にほかの窓口へ引き継がれます。'))),
    ctx.view === 'visitor' ? h('div', {class: 'notice'}, '来庁者向け表示中は、職員メモを表示しません。') : h('div', {class: 'grid2'},
      h('section', {class: 'panel'}, h('h2', {}, 'メモ'), form, h('h3', {style: {marginTop: '1.2rem'}}, 'これまでのメモ'), history),
      h('div', {},
        h('section', {class: 'panel'}, h('h2', {}, '支援措置（DV・ストーカー等）'), mask, people),
        h('section', {class: 'panel'}, h('h2', {}, '案件の終了'),
          h('p', {class: 'muted small-text'}, '終了した案件は変更できません。保存期間が過ぎると消去されます。'), endBtn))));
  draw();
}

// questions.js — the yes/no guide (G1, G3): one question at a time with big
// はい / いいえ, a progress bar over all questions, and the answered list
// beside it; tapping an answered item goes back to it and re-answers it.
import {fill} from '../ui.js';

export default async function render(root, ctx, params) {
  const {h} = ctx;
  const id = params.id;
  let back = null;          // the answered question being revisited, or null
  let busy = false;

  const bar = h('div', {class: 'progress-bar'});
  const progress = h('div', {class: 'progress', testid: 'progress', role: 'progressbar', 'aria-label': '質問の進み具合',
                             'aria-valuemin': '0'}, bar);
  const progressText = h('span', {class: 'progress-text'});
  const main = h('section', {class: 'panel q-main', 'aria-live': 'polite'});
  const head = h('div', {class: 'progress-wrap'}, h('h1', {class: 'q-title'}, '質問にお答えください'), progress, progressText);
  const list = h('ol', {});
  const side = h('aside', {class: 'panel answered', 'aria-label': '答えた質問'},
    h('h2', {}, '答えた質問'), h('p', {class: 'muted small-text'}, '押すと、その質問に戻って答え直せます。'), list);

  async function answer(q, value) {
    if (busy) return;
    busy = true;
    main.querySelectorAll('.answer').forEach((b) => { b.disabled = true; });
    try {
      const v = await ctx.api('PUT', `/visits/${id}/answers/${encodeURIComponent(q.id)}`, {answer: value});
      ctx.setVisit(v);
      back = null;
      draw();
      const first = main.querySelector('.answer.yes, [data-testid="questions-done"]');
      if (first) first.focus({preventScroll: true});
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
      main.querySelectorAll('.answer').forEach((b) => { b.disabled = ctx.visit.status === 'closed'; });
    } finally {
      busy = false;
    }
  }

  function question(q, current) {
    const closed = ctx.visit.status === 'closed';
    const yes = h('button', {class: 'answer yes', type: 'button', testid: 'answer-yes', disabled: closed,
                             'aria-pressed': current ? String(current === 'yes') : null,
                             on: {click: () => answer(q, 'yes')}}, 'はい');
    const no = h('button', {class: 'answer no', type: 'button', testid: 'answer-no', disabled: closed,
                            'aria-pressed': current ? String(current === 'no') : null,
                            on: {click: () => answer(q, 'no')}}, 'いいえ');
    return [
      current ? h('div', {class: 'notice info q-again row between'},
        h('span', {}, `前の質問に戻っています。いまの答え: ${current === 'yes' ? 'はい' : 'いいえ'}`),
        h('button', {class: 'btn small', type: 'button', testid: 'questions-latest',
                     on: {click: () => { back = null; draw(); }}}, '今の質問へ戻る')) : null,
      h('p', {class: 'q-text', testid: 'question-text', id: 'q-text'}, q.text),
      q.help ? h('p', {class: 'q-help', testid: 'question-help'}, q.help) : null,
      h('div', {class: 'yesno', role: 'group', 'aria-labelledby': 'q-text'}, yes, no),
    ];
  }

  function draw() {
    const v = ctx.visit;
    const p = v.progress;
    const pct = p.total ? Math.round((p.answered / p.total) * 100) : 100;
    bar.style.width = `${pct}%`;
    progress.setAttribute('aria-valuemax', String(p.total));
    progress.setAttribute('aria-valuenow', String(p.answered));
    progress.setAttribute('aria-valuetext', `${p.total}問中${p.answered}問に回答`);
    progressText.textContent = `${p.answered} / ${p.total} 問`;

    const again = back && v.answered.find((a) => a.id === back);
    if (!again) back = null;
    if (again) {
      fill(main, head, question(again, again.answer));
    } else if (v.next_question) {
      fill(main, head, question(v.next_question, null));
    } else {
      const n = v.procedures.filter((x) => x.source !== 'removed').length;
      fill(main, head,
        h('div', {class: 'q-done'},
          h('div', {class: 'big-check', 'aria-hidden': 'true'}, '✓'),
          h('h2', {}, 'すべての質問に答えました'),
          h('p', {}, `ご案内する手続は ${n} 件です。答えを直すときは、右の一覧から選んでください。`),
          h('button', {class: 'btn primary big', type: 'button', testid: 'questions-done',
                       on: {click: () => ctx.go(`#/visit/${id}/procedures`)}}, '手続の一覧を見る')));
    }

    fill(list, v.answered.map((a, i) => h('li', {},
      h('button', {class: 'ans-item', type: 'button', testid: `answered-${a.id}`,
                   'aria-current': a.id === back ? 'true' : null,
                   'aria-label': `${i + 1}. ${a.text} 答え: ${a.answer === 'yes' ? 'はい' : 'いいえ'}`,
                   on: {click: () => { back = a.id; draw(); main.querySelector('.answer.yes').focus({preventScroll: true}); }}},
        h('span', {class: 'ans-no'}, String(i + 1)),
        h('span', {class: 'ans-text'}, a.text),
        h('span', {class: ['ans-val', a.answer]}, a.answer === 'yes' ? 'はい' : 'いいえ')))));
    if (!v.answered.length) list.append(h('li', {class: 'muted small-text'}, 'まだありません'));
  }

  root.append(h('div', {class: 'q-layout'}, main, side));
  draw();
}

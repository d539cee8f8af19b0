// procedures.js — the procedures the guide proposes (G1, G4): documents to
// bring, counter and floor, notes, deadline, for whom and why; staff add,
// remove, undo and set statuses (C1); the slip's free text, print, download.
import {fill} from '../ui.js';

const FACTS = {
  children_under_18: (v) => `18歳以下のお子さん ${v}人`,
  school_children: (v) => `小中学生 ${v}人`,
  preschool_children: (v) => `就学前のお子さん ${v}人`,
  household_size: (v) => `世帯の人数 ${v}人`,
  has_mynumber_card: (v) => `マイナンバーカード${v ? 'あり' : 'なし'}`,
  foreign_resident: (v) => `外国籍の方${v ? 'あり' : 'なし'}`,
  age: (v) => `年齢 ${[].concat(v).join('・')}歳`,
};
const STATUS = [['pending', '未着手'], ['in_progress', '受付中'], ['done', '済']];

export async function download(ctx, path, name) {
  const res = await ctx.api('GET', path, undefined, {raw: true});
  const url = URL.createObjectURL(await res.blob());
  const a = ctx.h('a', {href: url, download: name, hidden: true});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

let catalog = null;   // every procedure of the pack, when the box tells it

export default async function render(root, ctx, params) {
  const {h} = ctx;
  const id = params.id;
  const staff = ctx.view === 'staff';
  if (!catalog) {
    try {
      const le = await ctx.api('GET', '/life-events');
      catalog = Array.isArray(le.procedures) ? le.procedures : [];
    } catch { catalog = []; }
  }

  const list = h('div', {});
  const floors = h('div', {class: 'floors', 'aria-label': '行く窓口の階'});
  const addSelect = h('select', {testid: 'procedure-add-select', 'aria-label': '追加する手続'});
  const slip = h('textarea', {testid: 'slip-text', maxLength: 2000, rows: 4, value: ctx.visit.slip_text || '',
                              placeholder: '例: 2階の子育て給付課へどうぞ。'});
  const slipState = h('small', {role: 'status'});

  const busy = (b, on) => { b.disabled = on; b.classList.toggle('busy', on); };
  async function act(btn, method, path, body, done) {
    busy(btn, true);
    try {
      ctx.setVisit(await ctx.api(method, path, body));
      draw();
      if (done) ctx.toast(done);
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
      if (btn.isConnected) busy(btn, false);
    }
  }

  function reasonText(r, v) {
    if (r.added_by_staff) return '職員が追加';
    if (r.question) {
      const q = v.answered.find((a) => a.id === r.question);
      const ans = r.answer === 'yes' ? '「はい」' : r.answer === 'no' ? '「いいえ」' : '（未回答）';
      return `${q ? `「${q.text}」` : r.question}に${ans}`;
    }
    if (r.fact) return (FACTS[r.fact] || ((x) => `${r.fact}: ${JSON.stringify(x)}`))(r.value);
    return '';
  }

  function procCard(p, v) {
    const removed = p.source === 'removed';
    const names = p.people ? p.people.map((i) => (v.people[i] && v.people[i].name) || `${i + 1}人目`).join('、') : '世帯全員';
    const here = ctx.session.counter;
    const mine = (p.statuses.find((s) => s.counter === here) || {}).status || 'pending';
    const others = p.statuses.filter((s) => s.counter !== here);
    const closed = v.status === 'closed';
    const tools = [];
    if (staff && !closed) {
      if (removed) {
        const b = h('button', {class: 'btn small', type: 'button', testid: `procedure-${p.id}-undo`});
        b.textContent = '元に戻す';
        b.addEventListener('click', () => act(b, 'DELETE', `/visits/${id}/procedures/${p.id}/manual`, undefined, `「${p.name}」を戻しました`));
        tools.push(b);
      } else {
        const seg = h('div', {class: 'seg', role: 'group', 'aria-label': 'この窓口での状況'},
          STATUS.map(([s, label]) => {
            const b = h('button', {type: 'button', 'aria-pressed': String(mine === s), testid: `procedure-${p.id}-status-${s}`}, label);
            b.addEventListener('click', () => act(b, 'PUT', `/visits/${id}/procedures/${p.id}/status`, {status: s}));
            return b;
          }));
        const rm = h('button', {class: 'btn small ghost danger', type: 'button', testid: `procedure-${p.id}-remove`},
          p.source === 'added' ? '追加を取り消す' : '外す');
        rm.addEventListener('click', () => act(rm, 'DELETE',
          p.source === 'added' ? `/visits/${id}/procedures/${p.id}/manual` : `/visits/${id}/procedures/${p.id}`,
          undefined, `「${p.name}」を外しました`));
        tools.push(h('span', {class: 'muted small-text'}, 'この窓口で'), seg, rm);
      }
    }
    const reasons = p.reasons.map((r) => reasonText(r, v)).filter(Boolean);
    return h('article', {class: ['panel', 'proc', removed && 'removed'], testid: `procedure-${p.id}`},
      h('div', {class: 'proc-floor', 'aria-label': `${p.counter.floor} ${p.counter.department}`},
        h('b', {}, p.counter.floor || '—'), h('span', {}, p.counter.department)),
      h('div', {},
        h('div', {class: 'proc-title'},
          h('h2', {}, p.name),
          h('span', {class: 'badge'}, p.kind === 'info' ? 'ご案内' : '届出・申請'),
          p.source === 'added' ? h('span', {class: 'badge added'}, '職員が追加') : null,
          removed ? h('span', {class: 'badge removed'}, '外しました（受付票に載りません）') : null,
          p.status === 'done' ? h('span', {class: 'badge ok'}, '済') : p.status === 'in_progress' ? h('span', {class: 'badge warn'}, '受付中') : null),
        h('div', {class: 'proc-where'}, p.counter.name),
        h('dl', {},
          p.documents.length ? [h('dt', {}, 'お持ちいただくもの'), h('dd', {}, h('ul', {}, p.documents.map((d) => h('li', {}, d))))] : null,
          h('dt', {}, '対象の方'), h('dd', {}, names),
          p.deadline ? [h('dt', {}, '期限'), h('dd', {}, p.deadline)] : null,
          p.notes ? [h('dt', {}, 'ご注意'), h('dd', {}, p.notes)] : null,
          p.counter.note ? [h('dt', {}, '窓口から'), h('dd', {}, p.counter.note)] : null,
          others.length ? [h('dt', {}, 'ほかの窓口'), h('dd', {}, others.map((s) =>
            `${s.counter}: ${(STATUS.find((x) => x[0] === s.status) || [0, s.status])[1]}`).join('、'))] : null,
          staff && reasons.length ? [h('dt', {}, '理由'), h('dd', {class: 'muted'}, reasons.join('／'))] : null),
        tools.length ? h('div', {class: 'proc-tools'}, tools) : null));
  }

  function draw() {
    const v = ctx.visit;
    const shown = v.procedures.filter((p) => staff || p.source !== 'removed');
    const active = v.procedures.filter((p) => p.source !== 'removed');
    const byFloor = new Map();
    for (const p of active) byFloor.set(p.counter.floor || '—', (byFloor.get(p.counter.floor || '—') || 0) + 1);
    fill(floors, h('span', {class: 'muted'}, `手続 ${active.length}件：`),
      [...byFloor].sort().map(([f, n]) => h('span', {class: 'floor-chip'}, `${f} ${n}件`)));
    fill(list, shown.map((p) => procCard(p, v)));
    if (!shown.length) list.append(h('p', {class: 'empty'}, 'ご案内する手続はありません。'));
    const have = new Set(v.procedures.filter((p) => p.source !== 'removed').map((p) => p.id));
    const options = catalog.length ? catalog : v.procedures.filter((p) => p.source === 'removed');
    fill(addSelect, h('option', {value: ''}, '追加する手続を選ぶ'),
      options.filter((p) => !have.has(p.id)).map((p) => h('option', {value: p.id}, p.name)));
    if (document.activeElement !== slip && slip.value !== (v.slip_text || '') && !ctx.drafts.has(`slip:${id}`))
      slip.value = v.slip_text || '';
  }

  let slipTimer = 0;
  slip.addEventListener('input', () => {
    clearTimeout(slipTimer);
    slipState.textContent = '入力中…';
    slipTimer = setTimeout(() => {
      slipState.textContent = '保存しています…';
      ctx.draft(`slip:${id}`, 'PUT', `/visits/${id}/slip-text`, {text: slip.value}).then((v) => {
        ctx.setVisit(v);
        slipState.textContent = '保存しました';
      }, (e) => { slipState.textContent = ctx.errorText(e); });
    }, 600);
  });
  const flushSlip = async () => {
    if (slipTimer && slipState.textContent === '入力中…') {
      clearTimeout(slipTimer);
      ctx.setVisit(await ctx.draft(`slip:${id}`, 'PUT', `/visits/${id}/slip-text`, {text: slip.value}));
      slipState.textContent = '保存しました';
    }
  };

  const printBtn = h('button', {class: 'btn primary big', type: 'button', testid: 'slip-print'}, '受付票を印刷');
  printBtn.addEventListener('click', async () => {
    busy(printBtn, true);
    printBtn.textContent = '印刷しています…';
    try {
      await flushSlip();
      await ctx.api('POST', `/visits/${id}/slip/print`);
      ctx.toast('受付票を印刷しました。プリンターからお取りください。');
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
    } finally {
      busy(printBtn, false);
      printBtn.textContent = '受付票を印刷';
    }
  });
  const dlBtn = h('button', {class: 'btn', type: 'button', testid: 'slip-download'}, 'PDFをダウンロード');
  dlBtn.addEventListener('click', async () => {
    busy(dlBtn, true);
    try {
      await flushSlip();
      await download(ctx, `/visits/${id}/slip.pdf`, `slip-${ctx.visit.number}.pdf`);
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
    } finally {
      busy(dlBtn, false);
    }
  });
  const addBtn = h('button', {class: 'btn', type: 'button', testid: 'procedure-add'}, '追加');
  addBtn.addEventListener('click', () => {
    const pid = addSelect.value;
    if (!pid) { ctx.toast('追加する手続を選んでください。', 'error'); addSelect.focus(); return; }
    const name = addSelect.selectedOptions[0].textContent;
    const removed = ctx.visit.procedures.find((p) => p.id === pid && p.source === 'removed');
    act(addBtn, removed ? 'DELETE' : 'POST', `/visits/${id}/procedures/${pid}${removed ? '/manual' : ''}`, undefined, `「${name}」を追加しました`);
  });

  const closed = ctx.visit.status === 'closed';
  root.append(
    h('div', {class: 'screen-head'}, h('div', {}, h('h1', {}, 'ご案内する手続'),
      h('p', {}, '上から順に、それぞれの窓口へお越しください。お持ちいただくものもご確認ください。'))),
    h('div', {class: 'proc-layout'},
      h('div', {}, floors, list),
      h('aside', {class: 'side'},
        h('section', {class: 'panel'},
          h('h2', {}, '受付票'),
          h('p', {class: 'muted small-text'}, '手続と窓口、受付番号とコードを印刷します。ほかの窓口では受付票を見せてください。'),
          h('label', {class: 'field staff-only'}, h('span', {}, '受付票に載せるひとこと'), slip, slipState),
          printBtn, dlBtn,
          h('button', {class: 'btn', type: 'button', testid: 'procedures-forms',
                       on: {click: () => ctx.go(`#/visit/${id}/forms`)}}, '申請書の入力へ')),
        staff && !closed ? h('section', {class: 'panel'},
          h('h2', {}, '手続を追加'),
          addSelect, addBtn,
          catalog.length ? null : h('p', {class: 'muted small-text'}, '外した手続を戻せます。')) : null)));
  if (closed) slip.disabled = true;
  draw();
  return () => { if (slipTimer && slipState.textContent === '入力中…') flushSlip().catch(() => {}); };
}

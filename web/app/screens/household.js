// household.js — the people of the case (G1, I1): name, kana, birth date
// (西暦 or 和暦), address with postal-code lookup and address search.  Saved
// as the user types (ctx.draft → PUT /visits/{id}/people); 「カードで読み取る」
// reads an ID card into a person (card.js, webforms).
import {parseDate, wareki, fill} from '../ui.js';

const DIGITS = (s) => String(s || '').replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));

export function addressText(a) {
  return `${a.pref}${a.city}${a.town || ''}`;
}

// The address search dialog, shared with anyone who wants it:
// resolves {postal_code, text} or null.
export function addressSearch(ctx, initial = '') {
  const {h} = ctx;
  return new Promise((resolve) => {
    let chosen = null, timer = 0, asked = 0;
    const q = h('input', {type: 'search', testid: 'address-search-text', value: initial, autofocus: true,
                          placeholder: '例: しゅうなんしもうり、毛利町', 'aria-label': '住所の一部（漢字・かな）'});
    const list = h('div', {class: 'address-picks', role: 'list', 'aria-live': 'polite'});
    async function search() {
      const text = q.value.trim();
      if (!text) { fill(list); return; }
      const my = ++asked;
      try {
        const r = await ctx.api('GET', `/address/search?q=${encodeURIComponent(text)}&limit=20`);
        if (my !== asked) return;
        fill(list, r.addresses.length ? r.addresses.map((a, i) => h('button', {
          class: 'pick', type: 'button', role: 'listitem', testid: `address-result-${i}`,
          on: {click: () => { chosen = {postal_code: a.postal_code, text: addressText(a)}; close(); }}},
          addressText(a), h('small', {}, `〒${a.postal_code.slice(0, 3)}-${a.postal_code.slice(3)}${a.note ? `　${a.note}` : ''}`)))
          : h('p', {class: 'muted'}, '見つかりませんでした。別の書き方でお試しください。'));
      } catch (e) {
        if (my === asked) fill(list, h('p', {class: 'form-error'}, ctx.errorText(e)));
      }
    }
    q.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(search, 250); });
    const body = h('div', {},
      h('h2', {}, '住所を検索'),
      h('p', {class: 'muted'}, '町名や市区町村名の一部を、漢字またはかなで入力してください。'),
      q, h('div', {class: 'results'}, list),
      h('div', {class: 'row end'}, h('button', {class: 'btn', type: 'button', on: {click: () => close()}}, '閉じる')));
    const close = ctx.modal(body, {label: '住所を検索', onClose: () => resolve(chosen)});
    if (initial) search();
  });
}

export default async function render(root, ctx, params) {
  const {h} = ctx;
  const id = params.id;
  const v = ctx.visit;
  const masked = v.people.some((p) => p.address_masked);
  const readOnly = v.status === 'closed' || masked;
  const people = v.people.map((p) => ({name: p.name || '', kana: p.kana || '', birth: p.birth_date || '',
                                       address: p.address || '', postal: '', support: p.support}));
  let saveTimer = 0, dirty = false;
  const status = h('span', {class: 'hint', role: 'status'});
  const list = h('div', {class: 'people'});

  function body() {
    return {people: people.map((p) => ({name: p.name.trim(), kana: p.kana.trim(),
                                        birth_date: parseDate(p.birth) || '', address: p.address.trim()}))};
  }
  function invalid() {
    return people.findIndex((p) => p.birth.trim() && !parseDate(p.birth));
  }
  // Sends the household now (through the draft queue: kept if offline).
  function save() {
    clearTimeout(saveTimer);
    if (readOnly) return Promise.resolve(ctx.visit);
    const bad = invalid();
    if (bad >= 0) {
      status.textContent = `${bad + 1}人目の生年月日を確認してください（未保存）`;
      return Promise.reject(Object.assign(new Error('birth'), {person: bad}));
    }
    dirty = false;
    status.textContent = '保存しています…';
    return ctx.draft(`people:${id}`, 'PUT', `/visits/${id}/people`, body()).then((state) => {
      ctx.setVisit(state);
      if (!dirty) status.textContent = '保存しました';
      return state;
    }, (e) => {
      status.textContent = '保存できませんでした';
      ctx.toast(ctx.errorText(e), 'error');
      throw e;
    });
  }
  function changed() {
    dirty = true;
    status.textContent = '入力中…';
    clearTimeout(saveTimer);
    saveTimer = setTimeout(() => save().catch(() => {}), 700);
  }

  function input(i, key, testid, attrs = {}) {
    const el = h('input', {type: 'text', testid: `person-${i}-${testid}`, value: people[i][key],
                           disabled: readOnly || (key === 'address' && masked), ...attrs});
    el.addEventListener('input', () => { people[i][key] = el.value; changed(); });
    return el;
  }

  function personCard(i) {
    const p = people[i];
    const src = ctx.visit.people[i];
    const name = input(i, 'name', 'name', {autocomplete: 'off', placeholder: '例: 山田 太郎'});
    const kana = input(i, 'kana', 'kana', {autocomplete: 'off', placeholder: '例: ヤマダ タロウ'});
    const birth = input(i, 'birth', 'birth', {inputmode: 'numeric', placeholder: '例: 1986-11-15 / 昭和61年11月15日'});
    const birthHint = h('small', {'aria-live': 'polite'});
    const showBirth = () => {
      const iso = parseDate(p.birth);
      const bad = p.birth.trim() && !iso;
      birth.setAttribute('aria-invalid', bad ? 'true' : 'false');
      birthHint.className = bad ? 'err' : '';
      birthHint.textContent = bad ? '日付として読めません（例: 1986-11-15、昭和61年11月15日、S61.11.15）'
        : iso ? `${wareki(iso)}${src && src.birth_date === iso && src.age != null ? `（${src.age}歳）` : ''}` : '西暦でも和暦でも入力できます';
    };
    birth.addEventListener('input', showBirth);
    birth.addEventListener('blur', () => {
      const iso = parseDate(p.birth);
      if (iso && iso !== p.birth) { p.birth = birth.value = iso; changed(); }
    });
    showBirth();

    const address = input(i, 'address', 'address', {autocomplete: 'off',
      placeholder: masked ? '支援措置のため表示しません' : '郵便番号を入れると町名まで入ります'});
    const postal = h('input', {type: 'text', testid: `person-${i}-postal`, value: p.postal, inputmode: 'numeric',
                               maxLength: 9, placeholder: '745-0004', disabled: readOnly, autocomplete: 'off'});
    const postalHint = h('small', {'aria-live': 'polite'});
    const setAddress = (text, code) => {
      p.address = address.value = text;
      if (code) p.postal = postal.value = `${code.slice(0, 3)}-${code.slice(3)}`;
      changed();
      address.focus();
      address.setSelectionRange(text.length, text.length);
    };
    let looked = '';
    postal.addEventListener('input', async () => {
      p.postal = postal.value;
      const code = DIGITS(postal.value).replace(/[^0-9]/g, '');
      postalHint.className = '';
      postalHint.textContent = '';
      if (code.length !== 7 || code === looked) return;
      looked = code;
      postalHint.textContent = '住所を探しています…';
      try {
        const r = await ctx.api('GET', `/address/postal/${code}`);
        if (!r.addresses.length) {
          postalHint.className = 'err';
          postalHint.textContent = 'この郵便番号の住所が見つかりません';
        } else if (r.addresses.length === 1) {
          postalHint.textContent = '町名まで入れました。番地を続けて入力してください';
          setAddress(addressText(r.addresses[0]), code);
        } else {
          postalHint.textContent = '';
          const picked = await choose(r.addresses);
          if (picked) setAddress(addressText(picked), code);
        }
      } catch (e) {
        postalHint.className = 'err';
        postalHint.textContent = ctx.errorText(e);
        looked = '';
      }
    });
    const find = h('button', {class: 'btn', type: 'button', testid: `person-${i}-address-search`, disabled: readOnly || masked,
      on: {click: async () => {
        const r = await addressSearch(ctx);
        if (r) setAddress(r.text, r.postal_code);
      }}}, '住所を検索');
    const same = i > 0 ? h('button', {class: 'btn small ghost', type: 'button', testid: `person-${i}-same`,
      disabled: readOnly || masked, on: {click: () => setAddress(people[0].address)}}, '1人目と同じ住所') : null;

    const card = h('button', {class: 'btn', type: 'button', testid: `person-${i}-card`, disabled: readOnly,
                              on: {click: () => readCard(i)}}, 'カードで読み取る');
    const del = h('button', {class: 'btn small ghost danger', type: 'button', testid: `person-${i}-remove`,
      disabled: readOnly, 'aria-label': `${i + 1}人目を削除`, on: {click: async () => {
        people.splice(i, 1);
        draw();
        changed();
      }}}, '削除');

    return h('section', {class: ['panel', 'person', p.support && 'is-support'], testid: `person-${i}`,
                         'aria-label': `${i + 1}人目`},
      h('div', {class: 'person-head'},
        h('span', {class: 'person-no'}, String(i + 1)),
        h('span', {class: 'grow'}, i === 0 ? '届出人（1人目）' : `${i + 1}人目`,
          p.support ? h('span', {class: 'badge warn staff-only'}, ' 支援措置') : null),
        card, del),
      h('div', {class: 'person-grid'},
        h('label', {class: 'field'}, h('span', {}, '氏名'), name),
        h('label', {class: 'field'}, h('span', {}, 'フリガナ'), kana),
        h('label', {class: 'field'}, h('span', {}, '生年月日'), birth, birthHint)),
      h('div', {class: 'person-addr'},
        h('label', {class: 'field'}, h('span', {}, '郵便番号'), postal, postalHint),
        h('label', {class: 'field'}, h('span', {}, '住所'), address),
        h('div', {class: 'row'}, same, find)));
  }

  function choose(addresses) {
    return new Promise((resolve) => {
      let chosen = null;
      const body = h('div', {},
        h('h2', {}, '町名を選んでください'),
        h('div', {class: 'address-picks'}, addresses.map((a, i) => h('button', {class: 'pick', type: 'button',
          testid: `postal-pick-${i}`, on: {click: () => { chosen = a; close(); }}},
          addressText(a), a.note ? h('small', {}, a.note) : null))),
        h('div', {class: 'row end'}, h('button', {class: 'btn', type: 'button', on: {click: () => close()}}, 'やめる')));
      const close = ctx.modal(body, {label: '町名を選ぶ', onClose: () => resolve(chosen)});
    });
  }

  async function readCard(i) {
    try {
      if (dirty || ctx.drafts.has(`people:${id}`) || i >= ctx.visit.people.length) await save();
      const mod = await import('./card.js');
      const state = await mod.readCard(ctx, id, i + 1);   // API person: 1 = the applicant
      if (!state) return;
      ctx.setVisit(state.people ? state : await ctx.api('GET', `/visits/${id}`));
      ctx.toast('カードから読み取りました');
      ctx.rerender();
    } catch (e) {
      if (e.person != null) return;   // a birth date to fix first: shown already
      ctx.toast(e.code ? ctx.errorText(e) : 'カードの読み取り画面を開けませんでした。', 'error');
    }
  }

  function draw() {
    fill(list, people.map((_, i) => personCard(i)));
    if (!people.length) list.append(h('p', {class: 'empty'}, 'まだ誰も入力されていません。「人を追加」を押してください。'));
  }

  function addPerson(initial) {
    const first = people[0];
    const fam = (s) => (s && /[ 　]/.test(s.trim()) ? `${s.trim().split(/[ 　]/)[0]} ` : '');
    people.push({name: first ? fam(first.name) : '', kana: first ? fam(first.kana) : '', birth: '',
                 address: first ? first.address : '', postal: first ? first.postal : '', support: false});
    draw();
    if (initial !== true) changed();
    const el = list.querySelector(`[data-testid="person-${people.length - 1}-name"]`);
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
    el.scrollIntoView({block: 'center'});
  }

  async function next(go) {
    try {
      await save();
      if (go) ctx.go(`#/visit/${id}/questions`);
      else ctx.toast('保存しました');
    } catch (e) {
      if (e.person != null) {
        const el = list.querySelector(`[data-testid="person-${e.person}-birth"]`);
        if (el) el.focus();
        ctx.toast('生年月日を確認してください。', 'error');
      }
    }
  }

  root.append(h('div', {class: 'screen-head'},
    h('div', {}, h('h1', {}, 'お手続きをする方'),
      h('p', {}, '一緒に手続をするご家族も入力してください。カードがあれば読み取るだけで入ります。'))));
  if (masked) root.append(h('div', {class: 'notice', role: 'note'},
    'この世帯は支援措置の対象のため、この窓口では住所を表示しません。世帯の変更は支援措置を設定した窓口で行います。'));
  else if (v.status === 'closed') root.append(h('div', {class: 'notice'}, 'この案件は終了しています（表示のみ）。'));
  root.append(list,
    h('div', {class: 'row'}, h('button', {class: 'btn big', type: 'button', testid: 'person-add', disabled: readOnly,
                                          on: {click: () => addPerson()}}, '＋ 人を追加')),
    h('div', {class: 'actionbar'}, status,
      h('button', {class: 'btn', type: 'button', testid: 'household-save', disabled: readOnly,
                   on: {click: () => next(false)}}, '保存'),
      h('button', {class: 'btn primary big', type: 'button', testid: 'household-next',
                   on: {click: () => (readOnly ? ctx.go(`#/visit/${id}/questions`) : next(true))}}, '次へ（質問に答える）')));
  draw();
  if (!people.length && !readOnly) addPerson(true);
  return () => {
    clearTimeout(saveTimer);
    if (dirty && !readOnly) save().catch(() => {});   // leaving mid-typing: send what is there
  };
}

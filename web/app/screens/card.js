// card.js — reading an ID card into a case (I7, A1): waits for a card on
// the counter's reader, the visitor types the PIN on an on-screen pad (the
// digits are never shown, never stored, and the buffer is wiped after the
// request), the tries left are shown before a second try and a wrong PIN is
// retried only when the visitor chooses to.  Licences without a PIN read at
// once; a residence card takes its 12-character number instead.
import {useCss} from './form.js';

const TYPE = {mynumber: 'マイナンバーカード', license: '運転免許証', residence: '在留カード', unknown: '読み取れないカード'};

// readCard(ctx, visitId, person) -> the case state after the read, or null
// (cancelled).  person: 1 = the applicant, 0 = a new person.
export function readCard(ctx, visitId, person) {
  useCss();
  const {h} = ctx;
  return new Promise((resolve) => {
    let result = null, card = null, pin = [], busy = false, offs = [], done = false;
    const status = h('div', {class: 'card-status', testid: 'card-status', role: 'status', 'aria-live': 'polite'});
    const tries = h('div', {class: 'card-tries', testid: 'card-tries', hidden: true});
    const error = h('div', {class: 'card-error', testid: 'card-error', role: 'alert', hidden: true});
    const dots = h('div', {class: 'pin-dots', testid: 'pin-dots', 'aria-label': '入力した桁数'});
    const number = h('input', {class: 'card-number', testid: 'card-number', type: 'text', maxLength: 12,
      autocomplete: 'off', 'aria-label': '在留カード番号（12文字）', hidden: true, placeholder: 'AB12345678CD',
      on: {keydown: (e) => { if (e.key === 'Enter') { e.preventDefault(); submit(); } }}});
    const key = (d) => h('button', {class: 'btn', type: 'button', testid: `pin-key-${d}`, 'aria-label': `数字`,
      on: {click: () => press(d)}}, String(d));
    const ok = h('button', {class: 'btn primary big', type: 'button', testid: 'pin-ok', on: {click: () => submit()}}, '読み取る');
    const pad = h('div', {class: 'pin-pad'},
      [1, 2, 3, 4, 5, 6, 7, 8, 9].map(key),
      h('button', {class: 'btn', type: 'button', testid: 'pin-back', on: {click: back}}, '1字消す'),
      key(0), ok);
    const result_ = h('div', {class: 'card-result'});
    const cancel = h('button', {class: 'btn', type: 'button', testid: 'card-cancel', on: {click: () => close()}}, 'やめる');
    const box = h('div', {class: 'card-box', testid: 'card-modal'},
      h('h2', {}, 'カードの読み取り'), status, tries, dots, number, pad, error, result_, h('div', {class: 'row end'}, cancel));
    const close = ctx.modal(box, {label: 'カードの読み取り', sticky: true, onClose: finish});
    // A hardware keyboard types digits too; they never reach an input.
    const onKey = (e) => {
      if (!card || number.hidden === false) return;
      if (/^[0-9]$/.test(e.key)) { e.preventDefault(); press(Number(e.key)); }
      else if (e.key === 'Backspace') { e.preventDefault(); back(); }
      else if (e.key === 'Enter' && e.target.tagName !== 'BUTTON') { e.preventDefault(); submit(); }
    };
    document.addEventListener('keydown', onKey, true);

    function wipe() { pin.fill(0); pin = []; paint(); }
    function finish() {
      done = true;
      wipe();
      number.value = '';
      document.removeEventListener('keydown', onKey, true);
      offs.forEach((off) => off());
      resolve(result);
    }
    function paint() {
      dots.replaceChildren(...Array.from({length: 4}, (_, i) => h('i', {class: i < pin.length ? 'on' : ''})));
      ok.disabled = busy || (needsPin() && pin.length !== 4) || (card && card.type === 'residence' && number.value.length !== 12);
    }
    function press(d) { if (!busy && needsPin() && pin.length < 4) { pin.push(d); paint(); } }
    function back() { if (!busy) { pin.pop(); paint(); } }
    function needsPin() { return card && (card.type === 'mynumber' || (card.type === 'license' && card.pin_set !== false)); }
    function showErr(t) { error.textContent = t || ''; error.hidden = !t; }

    function show(c) {
      card = c && c.present !== false ? c : null;
      wipe();
      showErr('');
      const isRes = card && card.type === 'residence';
      pad.hidden = !card || (!needsPin() && !isRes);
      for (const b of pad.querySelectorAll('[data-testid^="pin-key"],[data-testid="pin-back"]')) b.hidden = !needsPin();
      dots.hidden = !needsPin();
      number.hidden = !isRes;
      tries.hidden = !(card && card.tries_left != null && needsPin());
      if (card && card.tries_left != null) tries.textContent = `暗証番号の残り回数：${card.tries_left}回`;
      if (!card) status.textContent = 'カードを読み取り機に置いてください。';
      else if (card.type === 'unknown') status.textContent = '読み取れないカードです。マイナンバーカード・運転免許証・在留カードを置いてください。';
      else if (card.type === 'mynumber') status.textContent = `${TYPE.mynumber}：4桁の暗証番号（券面事項入力補助用）を押してください。`;
      else if (card.type === 'license') status.textContent = needsPin() ? `${TYPE.license}：暗証番号1（4桁）を押してください。` : `${TYPE.license}（暗証番号なし）：「読み取る」を押してください。`;
      else status.textContent = `${TYPE.residence}：カードに書かれた番号（12文字）を入力してください。`;
      if (card && card.tries_left === 0 && needsPin()) { showErr(ctx.errorText({code: 'blocked'})); pad.hidden = true; }
      if (card && card.type === 'license' && !needsPin()) { pad.hidden = false; }
      paint();
      if (isRes) number.focus();
      else if (!pad.hidden) ok.focus();
    }
    number.addEventListener('input', () => {
      number.value = number.value.toUpperCase().replace(/[^0-9A-Z]/g, '');
      paint();
    });

    async function submit() {
      if (busy || !card || ok.disabled) return;
      busy = true;
      paint();
      showErr('');
      status.textContent = '読み取っています。カードを動かさないでください…';
      const body = {person};
      if (needsPin()) body.pin = pin.join('');
      if (card.type === 'residence') body.card_number = number.value;
      wipe();                          // the typed digits go nowhere else
      try {
        const r = await ctx.api('POST', `/visits/${visitId}/card`, body);
        body.pin = body.card_number = '';
        result = r.case || r;
        if (r.case) ctx.setVisit(r.case);
        const c = r.card || {};
        status.textContent = `${TYPE[c.type] || 'カード'}を読み取りました。`;
        pad.hidden = dots.hidden = number.hidden = tries.hidden = true;
        result_.replaceChildren(h('p', {}, c.name ? `氏名：${c.name}` : '', c.gaiji ? h('span', {class: 'badge warn'}, `外字 ${c.gaiji}字：職員が確認します`) : null),
          c.address ? h('p', {}, `住所：${c.address}`) : null);
        cancel.textContent = '閉じる';
        cancel.focus();
        setTimeout(() => { if (!done) close(); }, 1800);
      } catch (e) {
        body.pin = body.card_number = '';
        busy = false;
        if (e.code === 'wrong_pin') {
          const n = e.triesLeft;
          card.tries_left = n;
          status.textContent = '暗証番号が違います。';
          showErr(n != null ? `暗証番号が違います。残り${n}回です。` : '暗証番号が違います。');
          tries.hidden = false;
          tries.textContent = `暗証番号の残り回数：${n}回`;
          pad.hidden = true;
          const again = h('button', {class: 'btn primary', type: 'button', testid: 'card-retry',
            on: {click: () => { again.remove(); show(card); }}}, 'もう一度入力する');
          result_.replaceChildren(n === 0 ? null : again);
          if (n !== 0) again.focus();
        } else {
          showErr(ctx.errorText(e));
          if (['removed', 'no_card', 'unknown_card'].includes(e.code)) show(null);
          else paint();
        }
      }
    }

    // The reader's state now, then its events.
    show(null);
    status.textContent = '読み取り機を確認しています…';
    ctx.api('GET', '/devices/card').then((c) => { if (!done && !busy) show(c); })
      .catch((e) => { if (!done) { status.textContent = ''; showErr(ctx.errorText(e)); pad.hidden = true; } });
    offs.push(ctx.ws.on('card.inserted', (ev) => { if (!busy && !done) show(Object.assign({present: true}, ev.data || ev)); }));
    offs.push(ctx.ws.on('card.removed', () => { if (!busy && !done) { show(null); } }));
  });
}

// The card screen alone (not routed by default): reads into the applicant.
export default async function render(root, ctx, params) {
  const {h} = ctx;
  root.append(h('h1', {}, 'カードの読み取り'),
    h('button', {class: 'btn primary big', type: 'button', on: {click: () => readCard(ctx, params.id, 1)}}, 'カードで読み取る'));
}

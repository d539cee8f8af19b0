// resume.js — continue a case at this counter (G5, C1): the slip's QR code
// or barcode through the tablet camera (a frame → POST /scan), a photo, the
// counter's USB scanner (slip.scanned events), the typed number, or a
// search by kana and birth date when the slip is lost.
import {fill, parseDate, timeText} from '../ui.js';

const DIGITS = (s) => String(s || '').replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));

export default async function render(root, ctx) {
  const {h} = ctx;
  let stream = null, timer = 0, scanning = false, opening = false;
  let events = null;

  async function open(body, how) {
    if (opening) return;
    opening = true;
    try {
      const v = await ctx.api('POST', '/visits/resume', body);
      stopCamera();
      ctx.setVisit(v);
      ctx.toast(`受付番号 ${v.number_display} の続きを開きました（${how}）`);
      ctx.go(`#/visit/${v.id}/procedures`);
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
      camState.textContent = stream ? 'コードを受付票ごと枠に入れてください' : '';
    } finally {
      opening = false;
    }
  }

  // One image to /scan; answers true when it led somewhere.
  async function scan(blob, type, quiet) {
    try {
      const r = await ctx.api('POST', '/scan', undefined, {body: blob, type});
      if (r.kind === 'token') { await open({token: r.token}, 'コード'); return true; }
      if (r.kind === 'number') { await open({number: r.number}, 'バーコード'); return true; }
      camState.textContent = '受付票のコードではありません。受付票の右上のコードを写してください。';
    } catch (e) {
      if (e.code === 'no_code') {
        if (!quiet) ctx.toast(ctx.errorText(e), 'error');
      } else {
        ctx.toast(ctx.errorText(e), 'error');
      }
    }
    return false;
  }

  // ---- camera -------------------------------------------------------------
  const video = h('video', {autoplay: true, muted: true, playsInline: true, hidden: true, 'aria-label': 'カメラの映像'});
  const canvas = h('canvas', {hidden: true});
  const camState = h('p', {class: 'muted', role: 'status'});
  const camHint = h('span', {}, 'カメラを起動すると、受付票のコードを自動で読み取ります');
  const aim = h('div', {class: 'aim', hidden: true});
  const camBtn = h('button', {class: 'btn primary big', type: 'button', testid: 'resume-camera'}, 'カメラで読み取る');

  function stopCamera() {
    clearInterval(timer);
    timer = 0;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.hidden = aim.hidden = true;
    camHint.hidden = false;
    camBtn.textContent = 'カメラで読み取る';
  }

  async function frame() {
    if (!stream || scanning || opening || video.readyState < 2) return;
    scanning = true;
    const w = video.videoWidth, hgt = video.videoHeight;
    const k = Math.min(1, 1280 / Math.max(w, hgt));
    canvas.width = Math.round(w * k);
    canvas.height = Math.round(hgt * k);
    canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((r) => canvas.toBlob(r, 'image/jpeg', 0.85));
    if (blob && stream) await scan(blob, 'image/jpeg', true);
    scanning = false;
  }

  camBtn.addEventListener('click', async () => {
    if (stream) { stopCamera(); camState.textContent = ''; return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      camState.textContent = 'この端末ではカメラを使えません。写真を撮る・番号を入力する方法をお使いください。';
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'environment', width: {ideal: 1280}}, audio: false});
    } catch (e) {
      camState.textContent = 'カメラを起動できませんでした（使用が許可されていない可能性があります）。';
      return;
    }
    video.srcObject = stream;
    video.hidden = aim.hidden = false;
    camHint.hidden = true;
    camBtn.textContent = 'カメラを止める';
    camState.textContent = 'コードを受付票ごと枠に入れてください';
    timer = setInterval(frame, 700);
  });

  const photo = h('input', {type: 'file', accept: 'image/*', capture: 'environment', testid: 'resume-photo',
                            'aria-label': '受付票の写真を撮る・選ぶ'});
  photo.addEventListener('change', async () => {
    const f = photo.files && photo.files[0];
    photo.value = '';
    if (!f) return;
    camState.textContent = '写真を読み取っています…';
    await scan(f, f.type || 'image/jpeg', false);
    if (!opening) camState.textContent = '';
  });

  // ---- number -------------------------------------------------------------
  const number = h('input', {type: 'text', class: 'number-input', testid: 'resume-number', inputmode: 'numeric',
                             autocomplete: 'off', maxLength: 12, placeholder: '1234-5678', 'aria-label': '受付番号（8けた）'});
  const numErr = h('small', {class: 'err', role: 'alert'});
  number.addEventListener('input', () => {
    const d = DIGITS(number.value).replace(/[^0-9]/g, '').slice(0, 8);
    const shown = d.length > 4 ? `${d.slice(0, 4)}-${d.slice(4)}` : d;
    if (shown !== number.value) number.value = shown;
    numErr.textContent = '';
  });
  const numForm = h('form', {class: 'row', novalidate: true}, h('div', {class: 'grow'}, number),
    h('button', {class: 'btn primary big', type: 'submit', testid: 'resume-number-submit'}, '開く'));
  numForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const d = DIGITS(number.value).replace(/[^0-9]/g, '');
    if (d.length !== 8) { numErr.textContent = '受付番号は8けたです（例: 1234-5678）'; number.focus(); return; }
    open({number: d}, '受付番号');
  });

  // ---- search -------------------------------------------------------------
  const kana = h('input', {type: 'text', testid: 'resume-kana', autocomplete: 'off', placeholder: '例: やまだ たろう'});
  const birth = h('input', {type: 'text', testid: 'resume-birth', autocomplete: 'off', placeholder: '例: 1986-11-15 / 昭和61年11月15日'});
  const results = h('div', {class: 'results', 'aria-live': 'polite'});
  let eventNames = null;
  const searchForm = h('form', {novalidate: true},
    h('div', {class: 'grid2'},
      h('label', {class: 'field'}, h('span', {}, 'フリガナ（一部でも）'), kana),
      h('label', {class: 'field'}, h('span', {}, '生年月日'), birth)),
    h('div', {class: 'row end'}, h('button', {class: 'btn big', type: 'submit', testid: 'resume-search'}, '探す')),
    results);
  searchForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    if (kana.value.trim()) body.kana = kana.value.trim();
    if (birth.value.trim()) {
      const iso = parseDate(birth.value);
      if (!iso) { fill(results, h('p', {class: 'form-error'}, '生年月日を日付として読めません（例: 1986-11-15）')); birth.focus(); return; }
      body.birth_date = iso;
    }
    if (!body.kana && !body.birth_date) { fill(results, h('p', {class: 'form-error'}, 'フリガナか生年月日を入力してください')); kana.focus(); return; }
    fill(results, h('p', {class: 'muted'}, '探しています…'));
    try {
      if (!eventNames) {
        eventNames = {};
        try { for (const ev of (await ctx.api('GET', '/life-events')).life_events) eventNames[ev.id] = ev.name; } catch { /* ids then */ }
      }
      const r = await ctx.api('POST', '/visits/search', body);
      fill(results, r.cases.length ? r.cases.map((c, i) => h('button', {class: 'pick', type: 'button', testid: `resume-result-${i}`,
        on: {click: async () => {
          try {
            ctx.setVisit(await ctx.api('GET', `/visits/${c.id}`));
            ctx.go(`#/visit/${c.id}/procedures`);
          } catch (err) { ctx.toast(ctx.errorText(err), 'error'); }
        }}},
        h('b', {}, c.people.map((p) => p.name).filter(Boolean).join('、') || '（氏名なし）'),
        h('small', {}, `受付番号 ${c.number.slice(0, 4)}-${c.number.slice(4)}　${eventNames[c.life_event] || c.life_event}　${timeText(c.created_at)}受付　${c.status === 'closed' ? '終了' : '手続中'}`)))
        : h('p', {class: 'muted'}, '見つかりませんでした（7日以内の受付が対象です）。'));
    } catch (err) {
      fill(results, h('p', {class: 'form-error'}, ctx.errorText(err)));
    }
  });

  events = ctx.ws.on('slip.scanned', (data) => {
    if (data.token) open({token: data.token}, 'スキャナー');
    else if (data.number) open({number: data.number}, 'スキャナー');
  });
  const offUnknown = ctx.ws.on('slip.unknown', () => ctx.toast('受付票のコードではありません。', 'error'));

  root.append(
    h('div', {class: 'screen-head'}, h('div', {}, h('h1', {}, '続きから（受付票）'),
      h('p', {}, '受付票のコードを読み取るか、受付番号を入力してください。窓口のスキャナーで読み取ることもできます。'))),
    h('div', {class: 'grid2'},
      h('section', {class: 'panel'},
        h('h2', {}, 'コードを読み取る'),
        h('div', {class: 'camera'}, video, aim, camHint), canvas,
        h('div', {class: 'row', style: {marginTop: '1rem'}}, camBtn,
          h('label', {class: 'btn big file-btn'}, '写真を撮る', photo)),
        camState),
      h('div', {},
        h('section', {class: 'panel'},
          h('h2', {}, '受付番号を入力'),
          numForm, numErr),
        h('section', {class: 'panel'},
          h('h2', {}, '受付票がないとき'),
          h('p', {class: 'muted small-text'}, 'お名前のフリガナや生年月日から探します。'),
          searchForm))));
  number.focus();
  return () => { stopCamera(); events(); offUnknown(); };
}

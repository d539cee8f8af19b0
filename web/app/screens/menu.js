// menu.js — the life-event menu of the active pack (G1).  Tapping an event
// makes the case (POST /visits) and opens its household; 続きから opens
// the continuation screen (G5).
export default async function render(root, ctx) {
  const {h} = ctx;
  const data = await ctx.api('GET', '/life-events');
  const facts = {has_mynumber_card: false, foreign_resident: false};
  let busy = false;

  function factSwitch(key, label) {
    const b = h('button', {class: 'switch', type: 'button', role: 'switch', 'aria-checked': 'false', testid: `fact-${key}`},
      h('span', {class: 'switch-track', 'aria-hidden': 'true'}, h('span', {class: 'switch-knob'})),
      h('span', {class: 'switch-label'}, label));
    b.addEventListener('click', () => {
      facts[key] = !facts[key];
      b.setAttribute('aria-checked', String(facts[key]));
    });
    return b;
  }

  async function start(ev, tile) {
    if (busy) return;
    busy = true;
    tile.classList.add('busy');
    tile.setAttribute('aria-busy', 'true');
    try {
      const r = await ctx.api('POST', '/visits', {life_event: ev.id, ...facts});
      ctx.setVisit(r.case);
      ctx.go(`#/visit/${r.case.id}/household`);
    } catch (e) {
      ctx.toast(ctx.errorText(e), 'error');
    } finally {
      busy = false;
      tile.classList.remove('busy');
      tile.removeAttribute('aria-busy');
    }
  }

  const events = [...data.life_events].sort((a, b) => a.order - b.order);
  root.append(
    h('div', {class: 'screen-head'},
      h('div', {}, h('h1', {}, 'きょうは、どのような手続でお越しですか'),
        h('p', {}, 'あてはまるものを選んでください。必要な手続をご案内します。'))),
    h('div', {class: 'panel facts'},
      h('span', {class: 'muted'}, 'はじめに（あてはまる場合）'),
      factSwitch('has_mynumber_card', 'マイナンバーカードをお持ちの方がいる'),
      factSwitch('foreign_resident', '外国籍の方がいる')),
    h('div', {class: 'tiles'},
      events.map((ev) => {
        const tile = h('button', {class: 'tile', type: 'button', testid: `life-event-${ev.id}`},
          h('span', {class: 'tile-name'}, ev.name.replace(/（.*）$/, '')),
          /（.*）$/.test(ev.name) ? h('span', {class: 'tile-sub'}, ev.name.replace(/^.*（(.*)）$/, '$1')) : null,
          ev.description ? h('span', {class: 'tile-desc'}, ev.description) : null);
        tile.addEventListener('click', () => start(ev, tile));
        return tile;
      }),
      h('button', {class: 'tile resume', type: 'button', testid: 'menu-resume', on: {click: () => ctx.go('#/resume')}},
        h('span', {class: 'tile-name'}, '続きから（受付票）'),
        h('span', {class: 'tile-desc'}, '受付票のコードや受付番号で、別の窓口の手続の続きを始めます'))));
  if (!events.length) root.append(h('p', {class: 'empty'}, 'この窓口で受け付ける手続がありません。'));
}

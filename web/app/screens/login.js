// login.js — staff login (U1).  The counter is asked only when this tablet
// is not registered to one; the last counter typed here is remembered.
export default async function render(root, ctx) {
  const {h} = ctx;
  const user = h('input', {type: 'text', testid: 'login-user', autocomplete: 'username', required: true,
                           autocapitalize: 'off', spellcheck: false, autofocus: true});
  const pass = h('input', {type: 'password', testid: 'login-password', autocomplete: 'current-password', required: true});
  const counter = h('input', {type: 'text', testid: 'login-counter', autocapitalize: 'off', spellcheck: false,
                              value: localStorage.getItem('mg.counter') || '', placeholder: '例: shimin-1'});
  const error = h('p', {class: 'form-error', testid: 'login-error', role: 'alert'});
  const submit = h('button', {class: 'btn primary big', type: 'submit', testid: 'login-submit'}, 'ログイン');

  async function onSubmit(e) {
    e.preventDefault();
    error.textContent = '';
    if (!user.value.trim() || !pass.value) {
      error.textContent = '職員IDとパスワードを入力してください。';
      (user.value.trim() ? pass : user).focus();
      return;
    }
    const body = {user: user.value.trim(), password: pass.value};
    if (counter.value.trim()) body.counter = counter.value.trim();
    submit.disabled = true;
    submit.textContent = '確認しています…';
    try {
      const s = await ctx.api('POST', '/session', body, {noAuthRedirect: true});
      if (body.counter) localStorage.setItem('mg.counter', body.counter);
      pass.value = '';
      ctx.login(s);
      ctx.go('#/');
    } catch (err) {
      error.textContent = ctx.errorText(err);
      pass.value = '';
      pass.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = 'ログイン';
    }
  }

  root.append(h('section', {class: 'panel login-card'},
    h('h1', {}, '職員ログイン'),
    h('p', {class: 'muted'}, '窓口の職員がログインしてから、来庁者の方にご案内します。'),
    h('form', {on: {submit: onSubmit}, novalidate: true},
      h('label', {class: 'field'}, h('span', {}, '職員ID'), user),
      h('label', {class: 'field'}, h('span', {}, 'パスワード'), pass),
      h('label', {class: 'field'}, h('span', {}, '窓口'), counter,
        h('small', {}, '窓口に登録済みの端末では空欄のままで構いません。')),
      error, submit)));
  user.focus();
}

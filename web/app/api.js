// api.js — ctx.api (fetch of /api/v1 with the CSRF header, ApiError, 401 ->
// login) and ctx.draft (values typed as the user goes: sent now, kept and
// retried while the network is down, so nothing typed is lost; W1).

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body || null;
    const e = body && body.error;
    this.triesLeft = e && e.tries_left != null ? e.tries_left : null;
  }
}

const STORE = 'mg.drafts';

// makeApi({csrf: () => token, onUnauthorized(), onPending(n)})
export function makeApi(hooks) {
  async function api(method, path, body, opts = {}) {
    const headers = {};
    const init = {method, headers, credentials: 'same-origin', cache: 'no-store'};
    const csrf = hooks.csrf();
    if (csrf && method !== 'GET') headers['X-CSRF-Token'] = csrf;
    if (opts.body !== undefined) {               // raw body: an image for /scan
      init.body = opts.body;
      if (opts.type) headers['Content-Type'] = opts.type;
    } else if (body !== undefined) {
      init.body = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    } else if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      init.body = '';                            // Content-Length: 0
    }
    let res;
    try {
      res = await fetch(`/api/v1${path}`, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'network error');
    }
    if (res.ok && opts.raw) return res;
    let data = null;
    const type = res.headers.get('content-type') || '';
    if (type.includes('json')) {
      try { data = await res.json(); } catch { data = null; }
    }
    if (res.ok) return data;
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, data);
    if (res.status === 401 && !opts.noAuthRedirect) hooks.onUnauthorized(err);
    throw err;
  }

  // Drafts: latest value per key wins; one request per key in flight.
  const entries = new Map();     // key -> {method, path, body, waiters: []}
  const busy = new Set();
  let timer = 0;

  function persist() {
    const o = {};
    for (const [k, e] of entries) o[k] = {method: e.method, path: e.path, body: e.body};
    try {
      if (entries.size) sessionStorage.setItem(STORE, JSON.stringify(o));
      else sessionStorage.removeItem(STORE);
    } catch { /* storage full or off: memory still holds it */ }
    hooks.onPending(entries.size);
  }

  function retryLater() {
    clearTimeout(timer);
    timer = setTimeout(flushAll, 5000);
  }

  async function flush(key) {
    const e = entries.get(key);
    if (!e || busy.has(key)) return;
    busy.add(key);
    try {
      const answer = await api(e.method, e.path, e.body);
      busy.delete(key);
      if (entries.get(key) !== e) { flush(key); return; }   // replaced meanwhile
      entries.delete(key);
      persist();
      e.waiters.forEach((w) => w.resolve(answer));
    } catch (err) {
      busy.delete(key);
      if (err.code === 'network' || err.status >= 502) {     // keep it, try again
        persist();
        retryLater();
        if (entries.get(key) !== e) flush(key);
        return;
      }
      if (entries.get(key) !== e) { flush(key); return; }
      entries.delete(key);                                     // the server decided
      persist();
      e.waiters.forEach((w) => w.reject(err));
    }
  }

  function flushAll() {
    for (const k of [...entries.keys()]) flush(k);
  }

  function draft(key, method, path, body) {
    return new Promise((resolve, reject) => {
      const old = entries.get(key);
      const waiters = old ? old.waiters : [];
      waiters.push({resolve, reject});
      entries.set(key, {method, path, body, waiters});
      persist();
      flush(key);
    });
  }

  // After a reload: the drafts of this tab's session go out again.
  function restore() {
    let o = null;
    try { o = JSON.parse(sessionStorage.getItem(STORE) || 'null'); } catch { o = null; }
    if (!o) return;
    for (const [k, e] of Object.entries(o))
      if (!entries.has(k)) entries.set(k, {method: e.method, path: e.path, body: e.body, waiters: []});
    persist();
    flushAll();
  }

  function clearDrafts() {
    for (const e of entries.values()) e.waiters.forEach((w) => w.reject(new ApiError(0, 'discarded', 'logged out')));
    entries.clear();
    clearTimeout(timer);
    persist();
  }

  window.addEventListener('online', flushAll);
  return {api, draft, restore, flushAll, clearDrafts, pending: () => entries.size,
          has: (prefix) => [...entries.keys()].some((k) => k.startsWith(prefix))};
}

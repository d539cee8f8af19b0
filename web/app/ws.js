// ws.js — the events WebSocket (/api/v1/events): device and print events
// for this counter.  Reconnects with a delay growing from 1 s to 30 s;
// onStatus reports 'connecting' | 'open' | 'closed' for the header.

export function makeEvents(onStatus) {
  const listeners = new Map();   // topic -> Set(fn); '*' gets every event
  let sock = null, delay = 1000, timer = 0, wanted = false;

  function connect() {
    clearTimeout(timer);
    if (!wanted) return;
    onStatus('connecting');
    let s;
    try {
      s = new WebSocket(`wss://${location.host}/api/v1/events`);
    } catch {
      schedule();
      return;
    }
    sock = s;
    s.addEventListener('open', () => { delay = 1000; onStatus('open'); });
    s.addEventListener('message', (m) => {
      let e;
      try { e = JSON.parse(m.data); } catch { return; }
      for (const key of [e.topic, '*']) {
        const set = listeners.get(key);
        if (set) for (const fn of [...set]) {
          try { fn(e.data || {}, e); } catch (err) { console.error(err); }
        }
      }
    });
    s.addEventListener('close', () => {
      if (sock !== s) return;
      sock = null;
      onStatus('closed');
      schedule();
    });
  }

  function schedule() {
    if (!wanted) return;
    clearTimeout(timer);
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  }

  return {
    on(topic, fn) {
      if (!listeners.has(topic)) listeners.set(topic, new Set());
      listeners.get(topic).add(fn);
      return () => listeners.get(topic).delete(fn);
    },
    start() { wanted = true; delay = 1000; if (!sock) connect(); },
    stop() {
      wanted = false;
      clearTimeout(timer);
      const s = sock;
      sock = null;
      if (s) s.close();
      onStatus('closed');
    },
    // After the network comes back: try now instead of waiting out the delay.
    poke() { if (wanted && !sock) { delay = 1000; connect(); } },
  };
}

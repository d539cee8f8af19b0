// Status page until the counter UI lands: reads /api/v1/health and listens
// on the events WebSocket, reconnecting with a growing delay.
const $ = (id) => document.getElementById(id);

async function refresh() {
  try {
    const r = await fetch('/api/v1/health', { cache: 'no-store' });
    const h = await r.json();
    $('server').textContent = h.status === 'ok' ? '稼働中' : '停止処理中';
    $('server').className = h.status === 'ok' ? 'ok' : 'bad';
    $('version').textContent = h.version;
    $('pack').textContent = h.pack.state === 'none' ? '未登録' : h.pack.state;
    $('devices').textContent = `プラグイン ${h.plugins.loaded} 件・異常 ${h.plugins.failed_devices} 件`;
  } catch {
    $('server').textContent = '接続できません';
    $('server').className = 'bad';
  }
}

let delay = 1000;
function listen() {
  const ws = new WebSocket(`wss://${location.host}/api/v1/events`);
  ws.onopen = () => { delay = 1000; $('events').textContent = '受信待ち'; };
  ws.onmessage = (m) => {
    const e = JSON.parse(m.data);
    $('events').textContent = `${e.topic}（${e.device}）`;
  };
  ws.onclose = () => {
    $('events').textContent = '再接続中…';
    setTimeout(listen, delay);
    delay = Math.min(delay * 2, 30000);
  };
}

refresh();
setInterval(refresh, 10000);
listen();

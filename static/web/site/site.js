// nashub player site: the live balance over /ws (session cookie, same origin), resuming by seq
// after a dropped connection (as /live does), notifications as they arrive, reality checks
// shown in place. No inline script (CSP). The page says data-user="<id>" and data-seq="<seq of
// user:<id> when the balance was read>": frames after that seq are asked for on connect.
'use strict';

(function () {
  const body = document.body;
  const userId = body.dataset.user;
  if (!userId) return;
  const room = 'user:' + userId;
  let lastSeq = Number(body.dataset.seq || '0');
  let retryMs = 500;
  let ws = null;

  function setLive(on) {
    const el = document.getElementById('live-status');
    if (el) {
      el.textContent = on ? el.dataset.on : el.dataset.off;
      el.classList.toggle('on', on);
    }
    body.dataset.liveState = on ? 'on' : 'off';
  }

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
  }

  function flash(el) {
    el.classList.remove('flash');
    void el.offsetWidth; // restart the highlight
    el.classList.add('flash');
  }

  function applyBalance(data) {
    document.querySelectorAll('[data-balance-of="' + data.user_id + '"]').forEach((el) => {
      el.textContent = data.balance;
      flash(el);
    });
    document.querySelectorAll('[data-currency-of="' + data.user_id + '"]').forEach((el) => {
      el.textContent = data.currency;
    });
  }

  function addNotice(data) {
    const list = document.getElementById('notices');
    if (!list) return;
    const li = document.createElement('li');
    const title = document.createElement('strong');
    title.textContent = data.title || '';
    li.appendChild(title);
    li.appendChild(document.createElement('br'));
    li.appendChild(document.createTextNode(data.body || ''));
    list.prepend(li);
    const none = document.getElementById('no-notices');
    if (none) none.remove();
  }

  function showAlert(text) {
    const main = document.getElementById('main');
    if (!main) return;
    const p = document.createElement('p');
    p.className = 'notice reality-check';
    p.setAttribute('role', 'alert');
    p.textContent = text;
    main.prepend(p);
  }

  function onRoomFrame(frame) {
    if (frame.seq <= lastSeq) return; // already applied
    if (frame.seq > lastSeq + 1) { // a gap: ask for what is missing first
      send({ type: 'resume', room, seq: lastSeq });
      return;
    }
    lastSeq = frame.seq;
    if (frame.type === 'balance_update' && frame.data) applyBalance(frame.data);
    else if (frame.type === 'notification' && frame.data) addNotice(frame.data);
    else if (frame.type === 'reality_check' && frame.data) {
      showAlert((body.dataset.realityText || '')
        .replace('{minutes}', String(frame.data.minutes_played))
        .replace('{net}', String(frame.data.net_result)));
    } else if (frame.type === 'session_limit' && frame.data && frame.data.message) {
      showAlert(frame.data.message);
    }
  }

  function onFrame(frame) {
    if (frame.type === 'subscribed' && watched().includes(frame.room)) {
      seqs[frame.room] = frame.seq;
      body.dataset.watching = 'on';
      return;
    }
    if (frame.type === 'subscribed' && frame.room === room) {
      setLive(true);
      // Changes since the page (or the last frame applied) were read: replay them.
      if (typeof frame.seq === 'number' && frame.seq > lastSeq) send({ type: 'resume', room, seq: lastSeq });
      return;
    }
    if (frame.type === 'refetch' && frame.room === room) {
      // Too far behind to replay: the page reads everything again.
      location.reload();
      return;
    }
    if (frame.room === room && typeof frame.seq === 'number') onRoomFrame(frame);
    else if (frame.type === 'balance_update' && frame.data && watched().includes(frame.room)) {
      // A watched player's room (the agents' shop): the latest balance is enough.
      const last = seqs[frame.room];
      if (last === undefined || frame.seq > last) {
        seqs[frame.room] = frame.seq;
        applyBalance(frame.data);
      }
    }
  }

  // Other users' rooms the page shows (the agents' shop lists its players).
  const seqs = {};
  function watched() {
    return (body.dataset.rooms || '').split(/\s+/).filter(Boolean);
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + '/ws');
    ws.addEventListener('open', () => {
      retryMs = 500;
      for (const r of watched()) ws.send(JSON.stringify({ type: 'subscribe', room: r }));
    });
    ws.addEventListener('message', (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch (_) { return; }
      onFrame(frame);
    });
    ws.addEventListener('close', () => {
      setLive(false);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    });
  }

  // A submitted form's buttons are disabled (the server's idempotency key is the real guard).
  document.addEventListener('submit', (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== 'post') return;
    setTimeout(() => form.querySelectorAll('button[type="submit"]').forEach((b) => { b.disabled = true; }), 0);
  });

  // Tests drop the socket to check the resume (never called by the page itself).
  window.nashubSite = { drop: () => ws && ws.close() };

  connect();
})();

// nashub web pages: live updates over /ws and small form helpers. No inline script (CSP).
// The socket authenticates with the session cookie (same origin; see docs/console.md).
// A page opts in with <body data-live="1" data-rooms="user:<id> ...">; elements marked
// data-balance-of="<user id>" / data-currency-of show that user's balance_update frames.
'use strict';

(function () {
  const body = document.body;
  const seqs = {};
  let retryMs = 500;
  let submitting = false;   // a form post is on its way: no reload may cancel it
  let reloadTimer = null;

  function setLive(on) {
    const el = document.getElementById('live-status');
    if (!el) return;
    el.textContent = on ? el.dataset.on : el.dataset.off;
    el.classList.toggle('on', on);
    body.dataset.liveState = on ? 'on' : 'off';
  }

  function rooms() {
    return (body.dataset.rooms || '').split(/\s+/).filter(Boolean);
  }

  function applyBalance(data) {
    document.querySelectorAll('[data-balance-of="' + data.user_id + '"]').forEach((el) => {
      el.textContent = data.balance;
      el.classList.remove('flash');
      void el.offsetWidth; // restart the highlight
      el.classList.add('flash');
    });
    document.querySelectorAll('[data-currency-of="' + data.user_id + '"]').forEach((el) => {
      el.textContent = data.currency;
    });
  }

  function onFrame(frame) {
    if (frame.room && typeof frame.seq === 'number') {
      const last = seqs[frame.room];
      if (last !== undefined && frame.seq <= last) return;
      seqs[frame.room] = frame.seq;
    }
    if (frame.type === 'balance_update' && frame.data) applyBalance(frame.data);
    // A page listing what a frame changes (data-reload-on="payment_update") reloads, unless
    // the user is typing in it.
    const reloadOn = (body.dataset.reloadOn || '').split(/\s+/);
    if (reloadOn.includes(frame.type)) {
      const active = document.activeElement;
      const typing = active && (active.tagName === 'INPUT' || active.tagName === 'TEXTAREA') && active.value;
      // Debounced: one reload for a burst of updates.
      if (!typing && !submitting && !reloadTimer) {
        reloadTimer = setTimeout(() => { if (!submitting) location.reload(); }, 300);
      }
    }
    document.dispatchEvent(new CustomEvent('nashub:frame', { detail: frame }));
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const ws = new WebSocket(scheme + location.host + '/ws');
    ws.addEventListener('open', () => {
      retryMs = 500;
      setLive(true);
      for (const room of rooms()) ws.send(JSON.stringify({ type: 'subscribe', room }));
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
    if (!(form instanceof HTMLFormElement)) return;
    if (form.method === 'post') submitting = true;
    if (form.dataset.noLock === '1') return;
    setTimeout(() => form.querySelectorAll('button[type="submit"]').forEach((b) => { b.disabled = true; }), 0);
  });

  if (body.dataset.live === '1') connect();
})();

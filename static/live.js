// nashub /live: log in, then watch the user's balance and notifications over /ws.
// The token travels in an `auth` frame (never in the URL); on a gap in a room's seq, or after a
// reconnect, the page sends `resume` with the last seq it applied; `refetch` reloads over HTTP.
'use strict';

const state = {
  access: null,
  refresh: null,
  userId: null,
  ws: null,
  seqs: {},          // room -> last applied seq
  retryMs: 500,
  stopped: false,
};

const $ = (id) => document.getElementById(id);

function setStatus(text) { $('status').textContent = text; }

function claims(token) {
  const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(part));
}

async function api(method, path, body) {
  const headers = { 'Authorization': 'Bearer ' + state.access };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401 && state.refresh && await refreshTokens()) {
    headers['Authorization'] = 'Bearer ' + state.access;
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  }
  const data = res.status === 204 ? null : await res.json();
  if (!res.ok) throw new Error((data && data.error && data.error.message) || res.statusText);
  return data;
}

async function refreshTokens() {
  const res = await fetch('/api/v1/auth/refresh', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refresh_token: state.refresh }),
  });
  if (!res.ok) return false;
  const t = await res.json();
  state.access = t.access_token;
  state.refresh = t.refresh_token;
  return true;
}

async function loadWallet() {
  try {
    const w = await api('GET', `/api/v1/users/${state.userId}/wallet`);
    $('balance').textContent = w.balance;
    $('currency').textContent = w.currency;
  } catch (e) {
    $('balance').textContent = '–';   // platform users have no wallet
  }
}

function renderNotice(n, atTop) {
  const id = 'n-' + n.id;
  if (document.getElementById(id)) return;
  const li = document.createElement('li');
  li.id = id;
  li.dataset.id = n.id;
  if (n.read) li.classList.add('read');
  const title = document.createElement('strong');
  title.className = 'title';
  title.textContent = n.title;
  const body = document.createElement('div');
  body.className = 'body';
  body.textContent = n.body;
  li.append(title, body);
  if (!n.read) {
    const mark = document.createElement('button');
    mark.type = 'button';
    mark.textContent = 'Mark read';
    mark.addEventListener('click', async () => {
      await api('POST', `/api/v1/notifications/${n.id}/read`, {});
      li.classList.add('read');
      mark.remove();
    });
    li.prepend(mark);
  }
  const list = $('notifications');
  if (atTop) list.prepend(li); else list.append(li);
}

async function loadNotifications() {
  const page = await api('GET', `/api/v1/users/${state.userId}/notifications?limit=20`);
  $('notifications').replaceChildren();
  for (const n of page.items) renderNotice(n, false);
}

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
}

function apply(frame) {
  switch (frame.type) {
    case 'subscribed': {
      if (frame.room === 'user:' + state.userId) setStatus('live');
      const last = state.seqs[frame.room];
      if (last !== undefined && last < frame.seq) send({ type: 'resume', room: frame.room, seq: last });
      else state.seqs[frame.room] = frame.seq;
      break;
    }
    case 'balance_update':
    case 'notification':
    case 'game_update': {
      const last = state.seqs[frame.room];
      if (last !== undefined && frame.seq <= last) return;          // already applied
      if (last !== undefined && frame.seq > last + 1) {              // a gap: ask for it
        send({ type: 'resume', room: frame.room, seq: last });
        return;
      }
      state.seqs[frame.room] = frame.seq;
      if (frame.type === 'balance_update' && frame.data.user_id === state.userId) {
        $('balance').textContent = frame.data.balance;
        $('currency').textContent = frame.data.currency;
      } else if (frame.type === 'notification') {
        renderNotice({ ...frame.data, read: false }, true);
      }
      break;
    }
    case 'refetch':
      state.seqs[frame.room] = frame.seq || 0;
      loadWallet();
      loadNotifications();
      break;
    case 'error':
      console.warn('hub error', frame);
      break;
  }
}

function connect() {
  if (state.stopped) return;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  state.ws = ws;
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'auth', token: state.access }));
    setStatus('joining…');
    state.retryMs = 500;
  };
  ws.onmessage = (e) => apply(JSON.parse(e.data));
  ws.onclose = async (e) => {
    if (state.stopped) return;
    setStatus(`reconnecting (closed ${e.code})…`);
    if (e.code === 4001) await refreshTokens();
    setTimeout(connect, state.retryMs);
    state.retryMs = Math.min(state.retryMs * 2, 10000);
  };
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('login-error').textContent = '';
  const body = { username: $('username').value, password: $('password').value };
  if ($('client').value.trim()) body.client = $('client').value.trim();
  const res = await fetch('/api/v1/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
  });
  const data = await res.json();
  if (!res.ok) {
    $('login-error').textContent = (data.error && data.error.message) || 'login failed';
    return;
  }
  state.access = data.access_token;
  state.refresh = data.refresh_token;
  state.userId = claims(state.access).sub;
  state.stopped = false;
  $('who').textContent = body.username;
  $('login').hidden = true;
  $('live').hidden = false;
  await Promise.all([loadWallet(), loadNotifications()]);
  connect();
});

$('logout').addEventListener('click', async () => {
  state.stopped = true;
  if (state.ws) state.ws.close(1000);
  try { await api('POST', '/api/v1/auth/logout'); } catch (e) { /* already gone */ }
  location.reload();
});

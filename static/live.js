// nashub /live: log in, then watch the user's balance and notifications over /ws; agents and
// admins also watch the players in their reach (listed by GET /api/v1/users, each `user:<id>`
// room subscribed: balances and game updates live).
// The token travels in an `auth` frame (never in the URL); on a gap in a room's seq, or after a
// reconnect, the page sends `resume` with the last seq it applied; `refetch` reloads over HTTP.
'use strict';

const state = {
  access: null,
  refresh: null,
  userId: null,
  role: null,
  players: [],       // watched players (agents and admins): [{ id, username }]
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

/** Players shown at most (a session may join 256 rooms). */
const PLAYERS_MAX = 100;

function playerRow(id) { return document.getElementById('p-' + id); }

function showBalance(id, balance, currency) {
  const row = playerRow(id);
  if (!row) return;
  row.querySelector('.balance').textContent = `${balance} ${currency || ''}`.trim();
}

async function loadPlayerWallet(id) {
  try {
    const w = await api('GET', `/api/v1/users/${id}/wallet`);
    showBalance(id, w.balance, w.currency);
  } catch (e) {
    showBalance(id, '–');
  }
}

/** Agents and admins: the players in their reach, each with its balance. */
async function loadDownline() {
  if (state.role === 'player') return;
  $('downline').hidden = false;
  let page;
  try {
    page = await api('GET', `/api/v1/users?role=player&status=active&limit=${PLAYERS_MAX}`);
  } catch (e) {
    $('downline-status').textContent = `players not listed: ${e.message}`;
    return;
  }
  state.players = page.items.map((u) => ({ id: u.id, username: u.username }));
  const body = $('players').querySelector('tbody');
  body.replaceChildren();
  for (const p of state.players) {
    const row = document.createElement('tr');
    row.id = 'p-' + p.id;
    for (const [cls, text] of [['username', p.username], ['balance', '…'], ['game', '–']]) {
      const cell = document.createElement('td');
      cell.className = cls;
      cell.textContent = text;
      row.append(cell);
    }
    body.append(row);
  }
  $('downline-status').textContent = state.players.length === 0 ? 'no players yet'
    : `${state.players.length} player(s)${page.next_cursor ? ` (the first ${PLAYERS_MAX})` : ''}`;
  await Promise.all(state.players.map((p) => loadPlayerWallet(p.id)));
}

/** Joins every watched player's room (after each (re)connect). */
function watchPlayers() {
  for (const p of state.players) send({ type: 'subscribe', room: 'user:' + p.id });
}

/** A watched player's room (not the viewer's own user or client room). */
function watchedRoom(room) {
  return room.startsWith('user:') && room !== 'user:' + state.userId;
}

function highlight(id) {
  const row = playerRow(id);
  if (!row) return;
  row.classList.add('changed');
  setTimeout(() => row.classList.remove('changed'), 1500);
}

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
}

function apply(frame) {
  switch (frame.type) {
    case 'subscribed': {
      if (frame.room === 'user:' + state.userId) {
        setStatus('live');
        watchPlayers();
      } else if (watchedRoom(frame.room)) {
        const row = playerRow(frame.room.slice(5));
        if (row) row.dataset.watched = 'true';
      }
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
      } else if (frame.type === 'balance_update') {
        showBalance(frame.data.user_id, frame.data.balance, frame.data.currency);
        highlight(frame.data.user_id);
      } else if (frame.type === 'game_update' && frame.data.user_id !== state.userId) {
        const row = playerRow(frame.data.user_id);
        if (row) {
          row.querySelector('.game').textContent =
            `${frame.data.provider} ${frame.data.status} ${frame.data.net} ${frame.data.currency}`;
          highlight(frame.data.user_id);
        }
      } else if (frame.type === 'notification' && !watchedRoom(frame.room)) {
        renderNotice({ ...frame.data, read: false }, true);
      }
      break;
    }
    case 'refetch':
      state.seqs[frame.room] = frame.seq || 0;
      if (watchedRoom(frame.room)) {
        loadPlayerWallet(frame.room.slice(5));
        break;
      }
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
  state.role = claims(state.access).role;
  state.stopped = false;
  $('who').textContent = body.username;
  $('login').hidden = true;
  $('live').hidden = false;
  await Promise.all([loadWallet(), loadNotifications(), loadDownline()]);
  connect();
});

$('logout').addEventListener('click', async () => {
  state.stopped = true;
  if (state.ws) state.ws.close(1000);
  try { await api('POST', '/api/v1/auth/logout'); } catch (e) { /* already gone */ }
  location.reload();
});

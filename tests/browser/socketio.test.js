// The official socket.io-client against the hub's /socket.io/ (issue 21). Run by
// tests/api/socketio_client.rs, which starts a hub and passes, in the environment: HUB_BASE,
// PLAYER_ID, PLAYER_TOKEN, AGENT_TOKEN, OTHER_PLAYER_ID (another client's player). Money moves
// are made by the Rust test: this script prints `HUB? deposit <amount>` and waits for `ok` on
// stdin. Exit status 0 and a last line `socketio ok` on success.
'use strict';

const readline = require('node:readline');
const { io } = require('socket.io-client');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const base = env('HUB_BASE');
const playerId = env('PLAYER_ID');
const userRoom = `user:${playerId}`;

const replies = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the Rust side to do something over HTTP; resolves once it is done. */
async function hub(request) {
  console.log(`HUB? ${request}`);
  const { value, done } = await replies.next();
  if (done || value !== 'ok') throw new Error(`hub request ${request}: ${value}`);
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

/** The next `name` event on `socket` (within 10 s). */
function next(socket, name, filter = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} event within 10 s`)), 10000);
    const handler = (frame) => {
      if (!filter(frame)) return;
      clearTimeout(timer);
      socket.off(name, handler);
      resolve(frame);
    };
    socket.on(name, handler);
  });
}

/** Connects and waits for the two automatic joins: { socket, seqs: room -> seq }. */
async function connect(options) {
  const socket = io(base, { transports: ['websocket'], reconnection: false, ...options });
  const seqs = {};
  const joined = new Promise((resolve, reject) => {
    socket.on('subscribed', (frame) => {
      seqs[frame.room] = frame.seq;
      if (Object.keys(seqs).length === 2) resolve();
    });
    socket.on('connect_error', reject);
    setTimeout(() => reject(new Error('not joined within 10 s')), 10000);
  });
  await joined;
  return { socket, seqs };
}

const ack = (socket, event, arg) => socket.timeout(10000).emitWithAck(event, arg);

async function main() {
  // A bad token: connect_error with the hub's code, no connection.
  const bad = io(base, { transports: ['websocket'], reconnection: false, auth: { token: 'nope' } });
  const refused = await new Promise((resolve, reject) => {
    bad.on('connect_error', resolve);
    bad.on('connect', () => reject(new Error('connected with a bad token')));
  });
  check(refused.data && refused.data.code === 'invalid_token', `refused: ${JSON.stringify(refused.data)}`);
  bad.close();
  console.log('bad token refused');

  // The player (token in the CONNECT auth payload) and its agent (token in the query).
  const player = await connect({ auth: { token: env('PLAYER_TOKEN') } });
  const start = player.seqs[userRoom];
  check(Number.isInteger(start), `player joined ${JSON.stringify(player.seqs)}`);
  const agent = await connect({ query: { token: env('AGENT_TOKEN') } });
  const joined = await ack(agent.socket, 'join_user_room', { user_id: playerId });
  check(joined.type === 'subscribed' && joined.room === userRoom && joined.seq === start,
    `agent join: ${JSON.stringify(joined)}`);
  const denied = await ack(agent.socket, 'join_user_room', { user_id: env('OTHER_PLAYER_ID') });
  check(denied.type === 'error' && denied.data.code === 'forbidden', `refused join: ${JSON.stringify(denied)}`);
  const deniedToPlayer = await ack(player.socket, 'join_user_room', env('OTHER_PLAYER_ID'));
  check(deniedToPlayer.data.code === 'forbidden', 'a player watches only itself');
  console.log('joins answered');

  // A deposit made over HTTP reaches both, seq + 1.
  const seen = [next(player.socket, 'balance_update'), next(agent.socket, 'balance_update')];
  await hub('deposit 12.34');
  for (const frame of await Promise.all(seen)) {
    check(frame.room === userRoom && frame.seq === start + 1 && frame.data.balance === '12.34',
      `balance_update: ${JSON.stringify(frame)}`);
  }
  console.log('balance_update received live');

  // Away for two deposits; back, resume replays them in order, then acks.
  player.socket.disconnect();
  await hub('deposit 1.00');
  await hub('deposit 1.00');
  const back = await connect({ auth: { token: env('PLAYER_TOKEN') } });
  check(back.seqs[userRoom] === start + 3, `rejoined at ${JSON.stringify(back.seqs)}`);
  const replayed = [];
  back.socket.on('balance_update', (frame) => replayed.push(frame.seq));
  const resumed = await ack(back.socket, 'resume', { room: userRoom, seq: start + 1 });
  check(resumed.type === 'resumed' && resumed.seq === start + 3 && resumed.replayed === 2,
    `resume: ${JSON.stringify(resumed)}`);
  check(JSON.stringify(replayed) === JSON.stringify([start + 2, start + 3]), `replayed ${replayed}`);
  const refetch = await ack(back.socket, 'resume', { room: userRoom, seq: start + 100 });
  check(refetch.type === 'refetch' && refetch.seq === start + 3, `refetch: ${JSON.stringify(refetch)}`);
  console.log('resume replayed, refetch when unservable');

  const left = await ack(agent.socket, 'leave_user_room', { user_id: playerId });
  check(left.type === 'unsubscribed' && left.room === userRoom, `leave: ${JSON.stringify(left)}`);

  back.socket.disconnect();
  agent.socket.disconnect();
  console.log('socketio ok');
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

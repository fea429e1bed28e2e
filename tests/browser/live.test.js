// Headless Chromium test of GET /live: a player logs in on the page and sees a deposit and a
// notification arrive live over /ws; its agent, on another page, sees the player listed and its
// balance change live. Run by tests/api/realtime_browser.rs, which starts a hub and passes, in
// the environment: HUB_BASE, CLIENT_CODE, PLAYER_USERNAME, PLAYER_PASSWORD, PLAYER_ID,
// AGENT_USERNAME, ADMIN_TOKEN. Exit status 0 on success.
'use strict';

const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const base = env('HUB_BASE');
const admin = env('ADMIN_TOKEN');
const playerId = env('PLAYER_ID');

async function hub(method, path, body, extraHeaders = {}) {
  const res = await fetch(base + path, {
    method,
    headers: { 'Authorization': 'Bearer ' + admin, 'Content-Type': 'application/json', ...extraHeaders },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.setDefaultTimeout(15000);

    await page.goto(base + '/live');
    await page.fill('#client', env('CLIENT_CODE'));
    await page.fill('#username', env('PLAYER_USERNAME'));
    await page.fill('#password', env('PLAYER_PASSWORD'));
    await page.click('#login-button');
    await page.waitForSelector('#live:not([hidden])');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'live');
    await page.waitForFunction(() => document.getElementById('balance').textContent === '0.00');

    // The agent, in its own browser context, watches its downline.
    const agentPage = await (await browser.newContext()).newPage();
    agentPage.on('pageerror', (e) => problems.push(String(e)));
    agentPage.setDefaultTimeout(15000);
    await agentPage.goto(base + '/live');
    await agentPage.fill('#client', env('CLIENT_CODE'));
    await agentPage.fill('#username', env('AGENT_USERNAME'));
    await agentPage.fill('#password', env('PLAYER_PASSWORD'));
    await agentPage.click('#login-button');
    await agentPage.waitForSelector('#downline:not([hidden])');
    const row = `#p-${playerId}`;
    await agentPage.waitForSelector(`${row}[data-watched="true"]`);
    await agentPage.waitForFunction((sel) => document.querySelector(sel + ' .username').textContent
      === 'player1' && document.querySelector(sel + ' .balance').textContent.startsWith('0.00'), row);
    console.log('agent sees its player');

    // 'live' means the socket has joined the player's room: now change things server-side.
    await hub('POST', `/api/v1/users/${playerId}/wallet/deposit`, { amount: '12.34' },
      { 'Idempotency-Key': 'browser-' + Date.now() });
    await page.waitForFunction(() => document.getElementById('balance').textContent === '12.34');
    console.log('balance updated live: 12.34');
    await agentPage.waitForFunction((sel) =>
      document.querySelector(sel + ' .balance').textContent === '12.34 USD', row);
    console.log("agent saw the player's balance live");

    await hub('POST', '/api/v1/notifications', { user_id: playerId, title: 'Welcome bonus', body: 'Ten free spins' });
    await page.waitForSelector('#notifications li .title:text("Welcome bonus")');
    console.log('notification arrived live');

    // Marking it read on the page reaches the API.
    await page.click('#notifications li button');
    await page.waitForSelector('#notifications li.read');
    const unread = await fetch(`${base}/api/v1/users/${playerId}/notifications?unread=true`, {
      headers: { 'Authorization': 'Bearer ' + admin },
    }).then((r) => r.json());
    if (unread.items.length !== 0) throw new Error('notification still unread: ' + JSON.stringify(unread));
    console.log('notification marked read');

    if (problems.length) throw new Error('page errors: ' + problems.join('; '));
    console.log('live page ok');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Headless Chromium test of the back-office console (/console, issue 20), per role: log in
// through the form, the main tasks, a second page seeing a balance change live over /ws,
// another role's pages refused, CSV export, dashboard charts. Fails on any console error or
// page error in a page that is expected to work. Screenshots go to $SCREENSHOTS.
// Run by tests/api/console_browser.rs with HUB_BASE, CLIENT_CODE, PASSWORD, SUPER_PASSWORD,
// PLAYER_ID, PLAYER_TOKEN, OTHER_PLAYER_ID, ADMIN_ID, CLIENT_ID, SCREENSHOTS, CHROMIUM in the environment.
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env('HUB_BASE');
const shots = env('SCREENSHOTS');
const problems = [];
// Console errors a step expects once (a form answered 422 with its errors in place logs
// "Failed to load resource ... 422"): `label: text` entries, each consumed by one message.
const expected = [];

function watch(page, label) {
  page.on('pageerror', (e) => problems.push(`${label}: ${e}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const i = expected.findIndex((e) => e.label === label && m.text().includes(e.text));
    if (i >= 0) expected.splice(i, 1);
    else problems.push(`${label}: ${m.text()}`);
  });
  page.setDefaultTimeout(15000);
  return page;
}

// Waits for a selector; on failure the page's URL and text go into the error.
async function expectSelector(page, selector) {
  try {
    await page.waitForSelector(selector);
  } catch (e) {
    const text = await page.textContent('body').catch(() => '?');
    throw new Error(`${selector} not shown at ${page.url()}: ${text.replace(/\s+/g, ' ').slice(0, 600)}`);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
}

async function login(browser, label, client, username, password, viewport) {
  const context = await browser.newContext(viewport ? { viewport } : {});
  const page = watch(await context.newPage(), label);
  await page.goto(base + '/console');
  // No session: the login page, coming back to /console afterwards.
  if (!page.url().includes('/console/login')) throw new Error(`${label}: not sent to login: ${page.url()}`);
  await page.fill('#client', client);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-form button[type="submit"]');
  await page.waitForURL(base + '/console');
  return page;
}

async function expectRefused(context, url, label) {
  // A fresh page whose console is not watched: the refusal is the expected answer.
  const page = await context.newPage();
  const res = await page.goto(url);
  if (res.status() !== 403 && res.status() !== 404) {
    throw new Error(`${label}: ${url} answered ${res.status()}`);
  }
  const text = await page.textContent('h1');
  await page.close();
  return { status: res.status(), text };
}

async function main() {
  fs.mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const code = env('CLIENT_CODE');
    const password = env('PASSWORD');

    // --- Client admin: dashboard charts, create a player, deposit, CSV.
    const admin = await login(browser, 'admin', code, 'boss', password);
    await admin.waitForSelector('#chart-ggr');
    await admin.waitForSelector('#chart-cash');
    await admin.waitForSelector('#chart-active');
    await admin.waitForSelector('#live-status.on');
    await shot(admin, 'admin-dashboard');

    await admin.click('nav a[href="/console/users"]');
    await admin.waitForSelector('#user-table');
    await admin.selectOption('#c-role', 'player');
    await admin.fill('#c-username', 'browser_player');
    await admin.fill('#c-password', password);
    await admin.click('#create-user button[type="submit"]');
    await admin.waitForSelector('#user-username');
    if ((await admin.textContent('#user-username')) !== 'browser_player') throw new Error('created player page');
    const newPlayerUrl = admin.url();
    await shot(admin, 'admin-new-player');

    // A bad amount is refused in place, the typed text kept.
    expected.push({ label: 'admin', text: 'status of 422' });
    await admin.fill('#deposit-amount', '1.234');
    await admin.click('#form-deposit button[type="submit"]');
    await admin.waitForSelector('#deposit-error');
    await shot(admin, 'admin-deposit-error');

    // The admin watches the Tree's player; a second page (its own session) deposits.
    const playerId = env('PLAYER_ID');
    await admin.goto(`${base}/console/users/${playerId}`);
    await admin.waitForSelector('#live-status.on');
    const before = await admin.textContent('#user-balance');
    const second = await login(browser, 'admin-2', code, 'boss', password);
    await second.goto(`${base}/console/users/${playerId}`);
    await second.fill('#deposit-amount', '25.00');
    await second.click('#form-deposit button[type="submit"]');
    await expectSelector(second, '#notice');
    await admin.waitForFunction((b) => document.getElementById('user-balance').textContent !== b, before);
    const after = await admin.textContent('#user-balance');
    if (after !== '25.00') throw new Error(`live balance: ${before} -> ${after}`);
    await shot(admin, 'admin-player-live-balance');

    // CSV export of the player's transactions.
    const [download] = await Promise.all([
      admin.waitForEvent('download'),
      admin.click('#csv-link'),
    ]);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    if (!csv.startsWith('id,kind,amount,balance_after,currency,created_at,memo') || !csv.includes('"deposit","25.00"')) {
      throw new Error('csv: ' + csv);
    }

    // --- Agent: its downline, credit its player (the admin's page sees it live), refusals.
    const agent = await login(browser, 'agent', code, 'agent1', password, { width: 390, height: 844 });
    await shot(agent, 'agent-dashboard-phone');
    await agent.click('nav a[href="/console/users"]');
    await agent.waitForSelector('#user-table');
    const listed = await agent.textContent('#user-table');
    if (!listed.includes('player1') || listed.includes('browser_player')) throw new Error('agent list: ' + listed);
    await agent.goto(`${base}/console/users/${playerId}`);
    await agent.fill('#credit-amount', '5');
    await agent.click('#form-credit button[type="submit"]');
    await expectSelector(agent, '#notice');
    await admin.waitForFunction(() => document.getElementById('user-balance').textContent === '30.00');
    await shot(agent, 'agent-player-phone');
    const refusedPlayer = await expectRefused(agent.context(), `${base}/console/users/${env('OTHER_PLAYER_ID')}`, 'agent');
    const refusedAdmin = await expectRefused(agent.context(), `${base}/console/users/${env('ADMIN_ID')}`, 'agent');
    if (refusedAdmin.status !== 403) throw new Error('agent on admin page: ' + refusedAdmin.status);
    const refusedPage = await agent.context().newPage();
    await refusedPage.goto(newPlayerUrl);
    await shot(refusedPage, 'agent-refused');
    await refusedPage.close();
    void refusedPlayer;

    // --- Client admin: the withdrawal queue updates live, then an approval.
    const queue = await login(browser, 'admin-queue', code, 'boss', password);
    await queue.click('nav a[href="/console/payments"]');
    await expectSelector(queue, '#queue-empty');
    await queue.waitForSelector('#live-status.on');
    const requested = await fetch(base + '/api/v1/payments/withdrawals', {
      method: 'POST',
      headers: {
        'Authorization': 'Bearer ' + env('PLAYER_TOKEN'),
        'Content-Type': 'application/json',
        'Idempotency-Key': 'console-test-withdrawal',
      },
      body: JSON.stringify({ gateway: 'stripe', amount: '10.00', destination: 'ba_player_1' }),
    });
    if (requested.status !== 201) throw new Error('withdrawal: ' + requested.status + ' ' + await requested.text());
    await expectSelector(queue, '#queue-table');
    await shot(queue, 'admin-withdrawal-queue');
    await queue.click('#queue-table button.approve');
    await expectSelector(queue, '#notice');
    // The agent has no Withdrawals page in its navigation, and the queue refuses its decisions.
    if (await agent.$('nav a[href="/console/payments"]')) throw new Error('agent sees the queue link');

    // --- Player: the console is for staff.
    const playerContext = await browser.newContext();
    const playerPage = await playerContext.newPage();
    await playerPage.goto(base + '/console/login');
    await playerPage.fill('#client', code);
    await playerPage.fill('#username', 'player1');
    await playerPage.fill('#password', password);
    const [res] = await Promise.all([
      playerPage.waitForNavigation(),
      playerPage.click('#login-form button[type="submit"]'),
    ]);
    void res;
    if ((await playerPage.textContent('h1')) !== 'Not allowed') throw new Error('player reached the console');

    // --- Super admin: every client side by side, a client's charts.
    const superAdmin = await login(browser, 'super', '', 'admin', env('SUPER_PASSWORD'));
    await superAdmin.waitForSelector('#overview-table');
    if (!(await superAdmin.textContent('#overview-table')).includes(code)) throw new Error('overview lacks the client');
    await superAdmin.goto(`${base}/console?client_id=${env('CLIENT_ID')}`);
    await superAdmin.waitForSelector('#chart-ggr');
    await shot(superAdmin, 'super-dashboard');
    await superAdmin.click('nav a[href="/console/clients"]');
    await expectSelector(superAdmin, '#clients-table');
    await shot(superAdmin, 'super-clients');
    // A client's page: branding saved through its form; provider health; system status.
    await superAdmin.click(`#clients-table a[href="/console/clients/${env('CLIENT_ID')}"]`);
    await expectSelector(superAdmin, '#branding-form');
    await superAdmin.fill('#b-name', 'Browser Brand');
    await superAdmin.click('#branding-save');
    await expectSelector(superAdmin, '#notice');
    if ((await superAdmin.inputValue('#b-name')) !== 'Browser Brand') throw new Error('branding not saved');
    if ((await superAdmin.inputValue('#c-luckysports-secret')) !== '') throw new Error('a secret field is filled');
    await shot(superAdmin, 'super-client');
    await superAdmin.click('nav a[href="/console/providers"]');
    await expectSelector(superAdmin, '#accounts-table td[data-breaker]');
    await shot(superAdmin, 'super-providers');
    await superAdmin.click('nav a[href="/console/system"]');
    await expectSelector(superAdmin, '#sys-version');
    await shot(superAdmin, 'super-system');
    // The client admin's session gets the refusal page for both, whatever a link shows.
    for (const page of ['/console/providers', '/console/system']) {
      const refused = await expectRefused(admin.context(), base + page, 'admin ' + page);
      if (refused.status !== 403) throw new Error(`admin ${page}: ${refused.status}`);
    }
    await superAdmin.click('nav a[href="/console/audit"]');
    await superAdmin.click('#verify-chain');
    await expectSelector(superAdmin, '#chain-result.notice');
    await shot(superAdmin, 'super-audit');

    // --- Logout ends the session: back to the login page.
    await admin.click('#logout');
    await admin.waitForURL(/\/console\/login/);
    await admin.goto(base + '/console');
    if (!admin.url().includes('/console/login')) throw new Error('still logged in after logout');
    await shot(admin, 'login');

    if (problems.length) throw new Error('console errors:\n' + problems.join('\n'));
    console.log('console ok');
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// Headless Chromium test of the player site (issue 27): two brands render with their own
// branding; a player (phone viewport) logs in, transfers to the simulator game, launches it,
// transfers back, sees the history and a balance change made by an admin over REST arrive live
// (also after the socket dropped: resumed by seq); ids of another player in URLs show nothing;
// no page logs a console error. Screenshots go to $SCREENSHOTS. Run by
// tests/api/site_browser.rs with: HUB_BASE, CODE_A, CODE_B, PLAYER_ID, PASSWORD, ADMIN_TOKEN,
// OTHER_TRANSFER_ID, SCREENSHOTS. Exit status 0 on success.
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const base = env('HUB_BASE');
const codeA = env('CODE_A');
const codeB = env('CODE_B');
const playerId = env('PLAYER_ID');
const admin = env('ADMIN_TOKEN');
const shots = env('SCREENSHOTS');

async function hub(method, p, body, extraHeaders = {}) {
  const res = await fetch(base + p, {
    method,
    headers: { 'Authorization': 'Bearer ' + admin, 'Content-Type': 'application/json', ...extraHeaders },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
  return res.json();
}

function check(cond, what) {
  if (!cond) throw new Error('failed: ' + what);
  console.log('ok: ' + what);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
}

async function noSideScroll(page, what) {
  const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
  check(fits, what + ' fits the phone width');
}

const balance = (page) => page.$eval('#balance', (el) => el.textContent.trim());

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const problems = [];
  const watch = (page) => {
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('response', (r) => { if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`); });
    page.setDefaultTimeout(15000);
    return page;
  };
  try {
    // Two brands, two looks.
    const desk = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const a = watch(await desk.newPage());
    await a.goto(`${base}/play/${codeA}/login`);
    const b = watch(await desk.newPage());
    await b.goto(`${base}/play/${codeB}/login`);
    const look = (page) => page.evaluate(() => ({
      name: document.getElementById('brand-name').textContent.trim(),
      colour: getComputedStyle(document.querySelector('main h1')).color,
      logo: !!document.getElementById('brand-logo'),
    }));
    const lookA = await look(a);
    const lookB = await look(b);
    check(lookA.name === 'Aurora Casino' && lookB.name === 'Borealis Bet', 'brand names ' + JSON.stringify([lookA, lookB]));
    check(lookA.colour === 'rgb(123, 31, 162)' && lookB.colour === 'rgb(0, 121, 107)', 'brand colours differ');
    check(lookB.logo && !lookA.logo, 'brand B shows its (data:) logo');
    await shot(a, '01-login-brand-a');
    await shot(b, '02-login-brand-b');
    await desk.close();

    // A player on a phone.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = watch(await phone.newPage());
    await page.goto(`${base}/play/${codeA}`);
    check(page.url().includes(`/play/${codeA}/login`), 'no session: the brand login page');
    await page.fill('#username', 'player1');
    await page.fill('#password', env('PASSWORD'));
    await Promise.all([page.waitForNavigation(), page.click('#login-form button[type="submit"]')]);
    check(page.url() === `${base}/play/${codeA}`, 'logged in: the lobby');
    await page.waitForFunction(() => document.body.dataset.liveState === 'on');
    check(await balance(page) === '100.00', 'lobby balance 100.00');
    await noSideScroll(page, 'lobby');
    await shot(page, '03-lobby-phone');

    // Search and provider filter.
    await page.fill('#q', 'dragon');
    await Promise.all([page.waitForNavigation(), page.click('#game-search button')]);
    const names = await page.$$eval('#games .game-name', (els) => els.map((e) => e.textContent));
    check(names.length >= 1 && names.every((n) => /dragon/i.test(n)), 'search finds ' + names.join(', '));
    await page.fill('#q', '');
    await page.selectOption('#provider', 'luckysports');
    await Promise.all([page.waitForNavigation(), page.click('#game-search button')]);
    const providers = await page.$$eval('#games a', (els) => els.map((e) => e.dataset.provider));
    check(providers.length >= 1 && providers.every((p) => p === 'luckysports'), 'provider filter');

    // Transfer in, launch, transfer out.
    await page.goto(`${base}/play/${codeA}/games/jdb/0-8001`);
    const game = page.url();
    await noSideScroll(page, 'game page');
    await shot(page, '04-game-phone');
    await page.fill('#amount-in', '25.00');
    await Promise.all([page.waitForNavigation(), page.click('#transfer-in')]);
    await page.waitForFunction(() => document.getElementById('transfer-state').textContent === 'succeeded');
    check(page.url().startsWith(game + '/transfers/'), 'the transfer page');
    await page.waitForFunction(() => document.getElementById('balance').textContent === '75.00');
    check(true, 'balance 75.00 after the transfer in');
    await shot(page, '05-transfer-in');
    await page.click('#back-to-game');
    await page.waitForSelector('#launch');
    check((await page.textContent('#held')).includes('25.00'), 'the provider holds 25.00');
    await Promise.all([page.waitForNavigation(), page.click('#launch')]);
    const url = await page.getAttribute('#launch-url', 'href');
    check(/^http:\/\/127\.0\.0\.1:\d+\/game\?uid=.*game=0-8001/.test(url), 'launch URL from the provider: ' + url);
    await shot(page, '06-launch');
    await page.click('#back-to-game');
    await page.fill('#amount-out', '25.00');
    await Promise.all([page.waitForNavigation(), page.click('#transfer-out')]);
    await page.waitForFunction(() => document.getElementById('transfer-state').textContent === 'succeeded');
    await page.waitForFunction(() => document.getElementById('balance').textContent === '100.00');
    check(true, 'transferred back: 100.00');

    // History, and a balance change made elsewhere arriving live.
    await page.click('nav a[href$="/history"]');
    await page.waitForSelector('#movements');
    const moves = await page.$$eval('#movements tbody tr', (rows) => rows.map((r) => r.textContent));
    check(moves.some((m) => m.includes('-25.00')) && moves.some((m) => m.includes('25.00')), 'history shows both transfers');
    check((await page.textContent('#sessions')).includes('0-8001'), 'history shows the game session');
    await page.waitForFunction(() => document.body.dataset.liveState === 'on');
    await hub('POST', `/api/v1/users/${playerId}/wallet/deposit`, { amount: '12.34' }, { 'Idempotency-Key': 'site-' + Date.now() });
    await page.waitForFunction(() => document.getElementById('balance').textContent === '112.34');
    check(true, 'an admin deposit shows live: 112.34');
    await shot(page, '07-history');
    // Dropped socket: a change made meanwhile arrives after the reconnect (resume by seq).
    await page.evaluate(() => window.nashubSite.drop());
    await page.waitForFunction(() => document.body.dataset.liveState === 'off');
    await hub('POST', `/api/v1/users/${playerId}/wallet/deposit`, { amount: '1.00' }, { 'Idempotency-Key': 'site-r-' + Date.now() });
    await page.waitForFunction(() => document.getElementById('balance').textContent === '113.34', null, { timeout: 20000 });
    check(true, 'resumed after a dropped socket: 113.34');

    // Notifications, stored and live.
    await page.click('nav a[href$="/notifications"]');
    await page.waitForFunction(() => document.body.dataset.liveState === 'on');
    await hub('POST', '/api/v1/notifications', { user_id: playerId, title: 'Welcome bonus', body: 'Ten free spins' });
    await page.waitForSelector('#notices li:has-text("Welcome bonus")');
    await page.reload();
    check((await page.textContent('#notices')).includes('Ten free spins'), 'the notification is stored');
    await shot(page, '08-notifications');

    // Cashier and safer play on the phone.
    await page.click('nav a[href$="/cashier"]');
    await page.fill('#deposit-amount', '20.00');
    await Promise.all([page.waitForNavigation(), page.click('#deposit')]);
    check((await page.getAttribute('#checkout-url', 'href')).includes('/pay/'), 'deposit request: the checkout link');
    await shot(page, '10-payment');
    await page.click('#back-to-cashier');
    await page.waitForSelector('#payments');
    await noSideScroll(page, 'cashier');
    await shot(page, '11-cashier-phone');
    await page.click('nav a[href$="/protection"]');
    await page.selectOption('#limit-name', 'deposit_daily');
    await page.fill('#limit-value', '500.00');
    await Promise.all([page.waitForNavigation(), page.click('#set-limit')]);
    check((await page.textContent('#limits')).includes('500.00'), 'a deposit limit set');
    await noSideScroll(page, 'safer play');
    await shot(page, '12-protection-phone');

    // Another player's ids in this player's URLs: nothing of theirs (a page without listeners:
    // its 404 is expected).
    const probe = await phone.newPage();
    const other = await probe.goto(`${game}/transfers/${env('OTHER_TRANSFER_ID')}`);
    const body = await probe.textContent('body');
    check(other.status() === 404 && !body.includes('7.77'), 'another player\'s transfer: 404, nothing shown');
    await shot(probe, '09-not-found');
    await probe.goto(`${base}/play/${codeB}/history`);
    check(probe.url().includes(`/play/${codeB}/login`), 'another brand: its login page, no data');
    await probe.close();

    // Logout ends the session.
    await Promise.all([page.waitForNavigation(), page.click('#logout')]);
    check(page.url().includes(`/play/${codeA}/login`), 'logged out');
    await page.goto(`${base}/play/${codeA}/history`);
    check(page.url().includes('/login'), 'history needs a session again');

    // The agent's shop: find the player and credit them.
    const shopCtx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const shop = watch(await shopCtx.newPage());
    await shop.goto(`${base}/play/${codeA}/login`);
    await shop.fill('#username', 'agent1');
    await shop.fill('#password', env('PASSWORD'));
    await Promise.all([shop.waitForNavigation(), shop.click('#login-form button[type="submit"]')]);
    check(shop.url().endsWith(`/play/${codeA}/shop`), 'an agent lands on the shop');
    await shop.fill('#find', 'player1');
    await Promise.all([shop.waitForNavigation(), shop.click('#player-search button')]);
    await shop.fill(`#amount-${playerId}`, '5.00');
    await Promise.all([shop.waitForNavigation(), shop.click(`[data-player="${playerId}"] button.credit`)]);
    await shop.waitForSelector('#shop-notice');
    check((await shop.textContent(`[data-player="${playerId}"] .player-balance`)).startsWith('118.34'), 'the agent credited the player');
    await shop.waitForFunction(() => document.body.dataset.watching === 'on');
    await hub('POST', `/api/v1/users/${playerId}/wallet/deposit`, { amount: '1.66' }, { 'Idempotency-Key': 'site-s-' + Date.now() });
    await shop.waitForFunction((id) => document.querySelector(`[data-balance-of="${id}"]`).textContent === '120.00', playerId);
    check(true, "the shop shows the player's balance live: 120.00");
    await noSideScroll(shop, 'shop');
    await shot(shop, '13-shop-phone');
    await shopCtx.close();

    check(problems.length === 0, 'no console errors: ' + JSON.stringify(problems));
    console.log('site ok');
  } finally {
    await browser.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });

// The dashboard (/admin/) in headless Chromium while clients publish: with the
// API token its charts draw and its counters move, and its close button ends a
// session; without the token the broker refuses it. Screenshot in test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';
import { openBrowserSession, output } from './chromium.js';

const TOKEN = 'dashboard-token';
let session;
let dir;
let load;
const clients = [];

function connect(url) {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new WebSocket(url, Versions.default.protocolVersions()),
      reconnectDelay: 0,
    });
    client.onConnect = (frame) => resolve({ client, id: frame.headers.session });
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
    client.activate();
    clients.push(client);
  });
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'stomphub-admin-'));
  const config = path.join(dir, 'broker.toml');
  writeFileSync(config, `[api]\ntoken = "${TOKEN}"\n`);
  session = await openBrowserSession({ args: ['--config', config] });
});

after(async () => {
  clearInterval(load);
  for (const client of clients) await client.deactivate();
  assert.equal(await session.close(), 0, 'stomphub exits 0 on SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('the dashboard draws live figures with the token, closes a session, and is refused without it', async () => {
  const { broker, browser, base } = session;
  // Load: three subscribers, a publisher sending 20 messages every 100 ms.
  const subscribers = [];
  for (let i = 0; i < 3; i += 1) {
    const subscriber = await connect(broker.url);
    subscriber.closed = new Promise((resolve) => {
      subscriber.client.onWebSocketClose = (event) => resolve(event);
    });
    subscriber.client.subscribe('/topic/dashboard-load', () => {});
    subscribers.push(subscriber);
  }
  const { client: publisher } = await connect(broker.url);
  let sent = 0;
  load = setInterval(() => {
    for (let i = 0; i < 20; i += 1) {
      publisher.publish({ destination: '/topic/dashboard-load', body: `m${sent}` });
      sent += 1;
    }
  }, 100);

  const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
  await page.goto(`${base}/admin/?token=${TOKEN}`);
  await page.waitForFunction(() => window.dashboard.snapshots >= 4, null, { timeout: 20_000 });
  assert.equal(await page.getAttribute('#status', 'data-state'), 'live');
  const first = await page.textContent('#deliveries');
  await sleep(2_500);
  const later = await page.textContent('#deliveries');
  assert.notEqual(first, later, 'the delivery counter moves under load');
  assert.equal(await page.textContent('#connections'), '4');
  const rate = Number((await page.textContent('#deliveries-rate')).replaceAll(',', ''));
  assert.ok(rate > 0, `deliveries per second shown: ${rate}`);

  // Every chart's canvas has pixels drawn on it.
  const drawn = await page.evaluate(() =>
    [...document.querySelectorAll('.chart canvas')].map((canvas) => {
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
      return painted;
    }));
  assert.equal(drawn.length, 3, 'three charts');
  for (const painted of drawn) assert.ok(painted > 500, `pixels drawn per chart: ${drawn}`);
  assert.ok(await page.locator('#destination-rows td', { hasText: '/topic/dashboard-load' }).count() > 0);
  await page.screenshot({ path: path.join(output, 'admin-dashboard.png'), fullPage: true });
  // On a phone's width the figures and charts stack, and nothing overflows the page.
  await page.setViewportSize({ width: 390, height: 844 });
  await sleep(1_200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow} px wider than a phone`);
  await page.screenshot({ path: path.join(output, 'admin-dashboard-phone.png'), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 1400 });

  // The close button of the first subscriber's row ends that session.
  const victim = subscribers[0];
  await page.locator(`tr[data-session="${victim.id}"] button`).click();
  const close = await Promise.race([victim.closed, sleep(5_000).then(() => null)]);
  assert.ok(close, 'the closed session saw its WebSocket close');
  assert.equal(close.code, 1000);
  await page.waitForFunction(
    (id) => window.dashboard.closed.some((c) => c.id === id && c.status === 200),
    victim.id,
    { timeout: 5_000 },
  );

  // Without the token: the page says refused, and the stream answers 401.
  const stranger = await browser.newPage();
  await stranger.goto(`${base}/admin/`);
  await stranger.waitForFunction(() => window.dashboard.state === 'refused', null, { timeout: 10_000 });
  assert.match(await stranger.textContent('#status'), /refused/);
  assert.equal((await fetch(`${base}/api/stats/stream`)).status, 401);
  assert.equal((await fetch(`${base}/api/stats/stream?token=wrong`)).status, 401);
  assert.equal((await fetch(`${base}/metrics`)).status, 401);
  await stranger.screenshot({ path: path.join(output, 'admin-refused.png') });
});

// The SSE demo pages in headless Chromium: the price table changes over time, an
// EventSource that is dropped (by the page, or by the server) resumes with every
// price in order, and the payment page shows "paid" when the HTTP API says so.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openBrowserSession, output } from './chromium.js';

let session;
let browser;
let base;

before(async () => {
  session = await openBrowserSession();
  ({ browser, base } = session);
});

after(async () => {
  assert.equal(await session.close(), 0, 'stomphub exits 0 on SIGTERM');
});

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForTicks(page, count) {
  await page.waitForFunction((n) => window.priceDemo.ticks.length >= n, count, { timeout: 20_000 });
}

test('the price table updates live and resumes without gaps after drops', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/sse/price.html`);
  await waitForTicks(page, 2);
  const before = await page.locator('tr[data-symbol="BTC"] td').nth(1).textContent();
  await waitForTicks(page, 4);
  const after = await page.locator('tr[data-symbol="BTC"] td').nth(1).textContent();
  assert.notEqual(before, after, 'the BTC price cell changed');

  // The page drops its stream and opens a new one with last_event_id.
  for (let drop = 0; drop < 2; drop += 1) {
    await page.evaluate(() => window.priceDemo.drop());
    await sleep(1500);
  }
  // The server ends the stream; the browser reconnects by itself with Last-Event-ID.
  const sessions = await (await fetch(`${base}/api/sessions`)).json();
  const sse = sessions.find((s) => s.attributes.transport === 'sse');
  const closed = await fetch(`${base}/api/sessions/${sse.id}`, { method: 'DELETE' });
  assert.equal(closed.status, 200);
  const count = await page.evaluate(() => window.priceDemo.ticks.length);
  await waitForTicks(page, count + 3);

  const demo = await page.evaluate(() => window.priceDemo);
  assert.equal(demo.gaps, 0, `ticks: ${demo.ticks}`);
  assert.equal(demo.repeats, 0, `ticks: ${demo.ticks}`);
  assert.equal(demo.historyGone, 0);
  assert.ok(demo.reconnects >= 3, `reconnects: ${demo.reconnects}`);
  for (let i = 1; i < demo.ticks.length; i += 1) {
    assert.equal(demo.ticks[i], demo.ticks[i - 1] + 1);
  }
  await page.screenshot({ path: path.join(output, 'sse-price.png'), fullPage: true });
});

test('the payment page shows "paid" when the HTTP API publishes it', async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/sse/payment.html?id=7`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
  const response = await fetch(`${base}/api/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ destination: '/topic/payment/7', body: { status: 'paid' } }),
  });
  assert.equal(response.status, 200);
  await page.locator('#payment', { hasText: 'paid' }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: path.join(output, 'sse-payment.png'), fullPage: true });
});

// The demo pages in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): admin sends, the client pages show it; a single-chat
// message reaches only user 2. Screenshots go to test-output/.
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

async function open(pathname) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`${base}${pathname}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  page.errors = errors;
  return page;
}

function messages(page) {
  return page.locator('#messages li').allTextContents();
}

test('admin sends, client pages show it; single chat reaches only user 2', async () => {
  const user2 = await open('/v1/index.html?id=2');
  const user3 = await open('/v1/index.html?id=3');
  const admin = await open('/v1/admin.html');

  await admin.fill('#broadcast input[name=content]', '大家好 from admin');
  await admin.click('#broadcast button');
  for (const page of [user2, user3]) {
    await page.locator('#messages li', { hasText: '大家好 from admin' }).waitFor({ timeout: 10_000 });
  }

  await admin.fill('#single input[name=to]', '2');
  await admin.fill('#single input[name=content]', 'only for two');
  await admin.click('#single button');
  await user2.locator('#messages li', { hasText: 'admin sent: only for two' }).waitFor({ timeout: 10_000 });

  await admin.fill('#http input[name=content]', 'via http trigger');
  await admin.click('#http button');
  await user3.locator('#messages li', { hasText: 'via http trigger' }).waitFor({ timeout: 10_000 });
  // The HTTP trigger's message arrived after the single-chat one, so user 3
  // would have shown the single-chat message by now if it had been sent to it.
  const seenBy3 = await messages(user3);
  assert.ok(!seenBy3.some((text) => text.includes('only for two')), `user 3 saw: ${seenBy3}`);
  const seenBy2 = await messages(user2);
  assert.ok(seenBy2.some((text) => text.includes('/chat/single/2')));

  const sessions = await browser.newPage();
  await sessions.goto(`${base}/v1/sessions.html`);
  await sessions.locator('#sessions tr').nth(2).waitFor({ timeout: 10_000 });
  assert.ok((await sessions.locator('#sessions tr').count()) >= 3);

  await admin.screenshot({ path: path.join(output, 'admin.png'), fullPage: true });
  await user2.screenshot({ path: path.join(output, 'client-user2.png'), fullPage: true });
  await user3.screenshot({ path: path.join(output, 'client-user3.png'), fullPage: true });
  await sessions.screenshot({ path: path.join(output, 'sessions.png'), fullPage: true });
  for (const page of [user2, user3, admin]) {
    assert.deepEqual(page.errors, []);
  }
});

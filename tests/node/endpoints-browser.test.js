// web/websocket.html (a bare `new WebSocket(url)`, no STOMP) in headless
// Chromium against the seeds' plain endpoints /socket/{id} and /ws/asset: the
// open text, echo and reply, a message from the HTTP trigger to one id only, a
// broadcast, a bare WebSocket from page.evaluate, a close code and reason shown
// on the page, closing, and the page on a phone-sized screen. Screenshots go to
// test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openBrowserSession, output } from './chromium.js';
import { eventually, withTimeout } from './sockjs-http.js';

const WAIT_MS = 10_000;

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

async function open(pathname, options = {}) {
  const page = await browser.newPage(options);
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('response', (response) => {
    if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) {
      errors.push(`HTTP ${response.status()} for ${response.request().method()} ${response.url()}`);
    }
  });
  await page.goto(`${base}${pathname}`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
  page.errors = errors;
  return page;
}

/** Waits for a received message on the page's list containing `text`. */
function shows(page, text, kind = 'message') {
  return page.locator(`#messages li[data-kind=${kind}]`, { hasText: text }).first().waitFor({ timeout: WAIT_MS });
}

/** What the page's socket received, in order. */
function received(page) {
  return page.evaluate(() => window.wsDemo.received.slice());
}

async function sendFromForm(page, text) {
  await page.fill('#send input[name=content]', text);
  await page.click('#send button');
}

async function stats() {
  return (await fetch(`${base}/api/stats`)).json();
}

async function trigger(pathAndQuery) {
  const response = await fetch(`${base}${pathAndQuery}`);
  assert.equal(response.status, 200, `${pathAndQuery}: ${response.status}`);
  return response.json();
}

test('/socket/{id}: open text, echo, a message to that id only, a broadcast, close', { timeout: 120_000 }, async () => {
  const seven = await open('/websocket.html?endpoint=socket&id=7');
  const eight = await open('/websocket.html?endpoint=socket&id=8');
  for (const page of [seven, eight]) {
    await shows(page, '-连接已建立-');
    assert.match(await page.locator('#status').textContent(), /connected to \/socket\/[78]/);
  }
  assert.equal((await stats()).endpoints['/socket/{id}'].sessions, 2);

  // The seeds' page: type, press send, the server echoes.
  await sendFromForm(seven, '你好 from the browser');
  await shows(seven, '你好 from the browser', 'sent');
  await shows(seven, '你好 from the browser');
  assert.equal(await seven.inputValue('#send input[name=content]'), '', 'the field is cleared after sending');

  // sendToMessageById(7, ...) through the HTTP trigger.
  await trigger(`/v1/chat/single?from=admin&to=7&content=${encodeURIComponent('only for seven 七')}`);
  await shows(seven, 'admin sent: only for seven 七');
  // Then broadcastInfo: 8 shows it, and 8's first message after the open text is
  // that one, so the message to 7 never reached 8.
  const everyone = await trigger(`/v1/chat/http?from=admin&to=&content=${encodeURIComponent('大家好 everyone')}`);
  for (const page of [seven, eight]) await shows(page, '大家好 everyone');
  assert.deepEqual(await received(eight), ['-连接已建立-', JSON.stringify(everyone)]);
  const sevenGot = await received(seven);
  assert.deepEqual(sevenGot.slice(0, 2), ['-连接已建立-', '你好 from the browser']);
  assert.equal(JSON.parse(sevenGot[2]).content, 'admin sent: only for seven 七');
  assert.deepEqual(JSON.parse(sevenGot[3]), everyone);
  await seven.screenshot({ path: path.join(output, 'websocket-socket-7.png'), fullPage: true });

  // The close button: the page shows the close code, loses data-ready, and the count drops.
  await eight.click('#close');
  await shows(eight, 'closed 1000', 'close');
  await eight.waitForSelector('body[data-ready="false"]', { timeout: WAIT_MS });
  assert.match(await eight.locator('#status').textContent(), /^closed: 1000/);
  await eventually(async () => (await stats()).endpoints['/socket/{id}'].sessions === 1, WAIT_MS, 'one /socket/{id} session');

  // Reconnecting from the form, as another id.
  await eight.fill('#connect input[name=id]', '9');
  await eight.click('#connect button[type=submit]');
  await eight.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  assert.match(await eight.locator('#status').textContent(), /connected to \/socket\/9/);
  assert.match(eight.url(), /endpoint=socket&id=9/);
  await trigger('/v1/chat/single?from=admin&to=9&content=now%20nine');
  await shows(eight, 'admin sent: now nine');

  for (const page of [seven, eight]) {
    assert.deepEqual(page.errors, []);
    await page.close();
  }
  await eventually(async () => (await stats()).endpoints['/socket/{id}'].sessions === 0, WAIT_MS, 'no /socket/{id} sessions');
});

test('/ws/asset: open text, reply, a broadcast to /topic/asset, a close code with its reason', { timeout: 120_000 }, async () => {
  const asset = await open('/websocket.html?endpoint=asset');
  const other = await open('/websocket.html?endpoint=asset');
  const socketPage = await open('/websocket.html?endpoint=socket&id=3');
  await shows(asset, '连接成功');
  assert.equal(await asset.locator('#id-field').isVisible(), false, 'no id field for /ws/asset');

  await sendFromForm(asset, '消息发送测试(From Client)');
  await shows(asset, '收到消息，消息内容：消息发送测试(From Client)');

  // broadCastInfo: POST /api/publish to /topic/asset reaches both asset pages, not /socket/3.
  const response = await fetch(`${base}/api/publish`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ destination: '/topic/asset', body: '资产更新 asset update' }),
  });
  assert.equal(response.status, 200);
  assert.equal((await response.json()).deliveries, 2);
  for (const page of [asset, other]) await shows(page, '资产更新 asset update');
  assert.deepEqual(await received(other), ['连接成功', '资产更新 asset update']);
  assert.deepEqual(await received(socketPage), ['-连接已建立-']);
  await asset.screenshot({ path: path.join(output, 'websocket-asset.png'), fullPage: true });

  // A binary message is refused: the page shows 1003 and the server's reason.
  await other.evaluate(() => window.wsDemo.socket.send(new Uint8Array([1, 2, 3])));
  await shows(other, 'closed 1003', 'close');
  const [closed] = await other.evaluate(() => window.wsDemo.closes);
  assert.equal(closed.code, 1003);
  assert.match(closed.reason, /text/);
  assert.match(await other.locator('#status').textContent(), /closed: 1003 .*text/);
  await other.waitForSelector('body[data-ready="false"]', { timeout: WAIT_MS });
  // The first page did not notice.
  await sendFromForm(asset, 'still here');
  await shows(asset, '收到消息，消息内容：still here');
  await other.screenshot({ path: path.join(output, 'websocket-closed-1003.png'), fullPage: true });

  for (const page of [asset, other, socketPage]) {
    assert.deepEqual(page.errors, []);
    await page.close();
  }
});

test('a bare new WebSocket in the page: both endpoints, the trigger, a broadcast and close', { timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  // Everything happens in the page; the page.evaluate below is bounded by its own timers.
  const run = page.evaluate(async (waitMs) => {
    function socket(path) {
      const ws = new WebSocket(`ws://${location.host}${path}`);
      const inbox = [];
      const waiters = [];
      ws.onmessage = (event) => {
        inbox.push(event.data);
        waiters.splice(0).forEach((wake) => wake());
      };
      const closed = new Promise((resolve) => {
        ws.onclose = (event) => resolve({ code: event.code, reason: event.reason, wasClean: event.wasClean });
      });
      async function next(what) {
        const deadline = Date.now() + waitMs;
        while (inbox.length === 0) {
          if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} on ${path}`);
          await new Promise((resolve) => {
            waiters.push(resolve);
            setTimeout(resolve, 100);
          });
        }
        return inbox.shift();
      }
      return { ws, next, closed };
    }
    const out = {};
    const five = socket('/socket/5');
    const six = socket('/socket/6');
    const asset = socket('/ws/asset');
    out.open = [await five.next('the open text'), await six.next('the open text'), await asset.next('the open text')];
    five.ws.send('echo me 回声');
    out.echo = await five.next('the echo');
    asset.ws.send('hi');
    out.reply = await asset.next('the reply');
    await fetch('/v1/chat/single?from=page&to=5&content=for%20five');
    out.single = JSON.parse(await five.next('the trigger message')).content;
    await fetch('/v1/chat/http?from=page&to=&content=for%20all');
    out.broadcast = [JSON.parse(await five.next('the broadcast')).content, JSON.parse(await six.next('the broadcast')).content];
    five.ws.close(1000, 'bye');
    six.ws.close();
    asset.ws.close();
    out.closed = await five.closed;
    await six.closed;
    await asset.closed;
    return out;
  }, WAIT_MS);
  const out = await withTimeout(run, 60_000, 'the in-page WebSocket script');
  assert.deepEqual(out.open, ['-连接已建立-', '-连接已建立-', '连接成功']);
  assert.equal(out.echo, 'echo me 回声');
  assert.equal(out.reply, '收到消息，消息内容：hi');
  assert.equal(out.single, 'page sent: for five');
  assert.deepEqual(out.broadcast, ['for all', 'for all']);
  assert.equal(out.closed.code, 1000);
  assert.equal(out.closed.wasClean, true);
  await eventually(
    async () => {
      const { endpoints } = await stats();
      return endpoints['/socket/{id}'].sessions === 0 && endpoints['/ws/asset'].sessions === 0;
    },
    WAIT_MS,
    'the sessions to be gone',
  );
  await page.close();
});

test('the page fits a phone screen and switches endpoints from the form', { timeout: 120_000 }, async () => {
  const phone = await open('/websocket.html?endpoint=socket&id=12', {
    viewport: { width: 375, height: 740 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
  });
  await shows(phone, '-连接已建立-');
  const overflowing = await phone.evaluate(() =>
    [...document.querySelectorAll('body > *, fieldset *')]
      .filter((element) => element.getBoundingClientRect().right > window.innerWidth)
      .map((element) => element.outerHTML.slice(0, 80)),
  );
  assert.deepEqual(overflowing, [], 'nothing runs off a 375 px screen');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  await phone.tap('#send input[name=content]');
  await phone.fill('#send input[name=content]', 'from a phone 手机');
  await phone.tap('#send button');
  await shows(phone, 'from a phone 手机');

  await phone.selectOption('#connect select[name=endpoint]', 'asset');
  await phone.tap('#connect button[type=submit]');
  await shows(phone, '连接成功');
  await phone.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
  assert.match(await phone.locator('#status').textContent(), /connected to \/ws\/asset/);
  await sendFromForm(phone, 'asset from a phone');
  await shows(phone, '收到消息，消息内容：asset from a phone');
  // The old /socket/12 was closed when the page switched.
  await eventually(async () => (await stats()).endpoints['/socket/{id}'].sessions === 0, WAIT_MS, 'the old socket to close');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  await phone.screenshot({ path: path.join(output, 'websocket-phone.png'), fullPage: true });
  assert.deepEqual(phone.errors, []);
  await phone.close();
});

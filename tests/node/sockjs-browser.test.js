// web/sockjs.html in headless Chromium, with each SockJS transport forced
// (websocket, xhr-streaming, xhr-polling, eventsource), under the seeds' old
// stompjs 2.3.3 (Stomp.over(new SockJS(...))) and under @stomp/stompjs: connect,
// SUBSCRIBE with a receipt, 100 ordered Chinese messages with custom headers, a
// 60,000-byte body, SockJS heart-beats, the demo's /app/v1/chat, DISCONNECT with a
// receipt; then the browser-only transports (htmlfile, jsonp-polling, iframe-*)
// under the seeds' client. Screenshots go to test-output/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startBroker } from './broker.js';
import { launchChromium, output } from './chromium.js';
import { eventually, request, withTimeout, writeConfig } from './sockjs-http.js';

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];
// The browser-only transports, under the seeds' client only.
const MORE_TRANSPORTS = ['htmlfile', 'jsonp-polling', 'iframe-eventsource', 'iframe-xhr-polling', 'iframe-htmlfile'];
/** The `transport` /api/stats counts each under (an iframe transport is its inner one). */
const STATS_KEY = {
  websocket: 'sockjs/websocket',
  'xhr-streaming': 'sockjs/xhr_streaming',
  'xhr-polling': 'sockjs/xhr',
  eventsource: 'sockjs/eventsource',
  htmlfile: 'sockjs/htmlfile',
  'jsonp-polling': 'sockjs/jsonp',
  'iframe-eventsource': 'sockjs/eventsource',
  'iframe-xhr-polling': 'sockjs/xhr',
  'iframe-htmlfile': 'sockjs/htmlfile',
};
const CLIENTS = {
  'stomp-over': { query: '', label: 'stompjs-2.3.3', version: '1.1' },
  stompjs: { query: '&client=stompjs', label: 'stompjs', version: '1.2' },
};

let broker;
let browser;
let base;

before(async () => {
  broker = await startBroker({ args: ['--config', writeConfig('[sockjs]\nheartbeat_ms = 500\n')] });
  base = `http://${broker.address}`;
  browser = await launchChromium();
  mkdirSync(output, { recursive: true });
});

after(async () => {
  await browser?.close();
  assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
});

async function stats() {
  return JSON.parse((await request('GET', `${base}/api/stats`)).text);
}

async function open(pathname) {
  const page = await browser.newPage();
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

/** Runs `fn(arg)` in the page, bounded in time (page.evaluate itself never times out). */
function inPage(page, fn, arg, ms, what) {
  return withTimeout(page.evaluate(fn, arg), ms, what);
}

const runs = [
  ...TRANSPORTS.flatMap((transport) => Object.keys(CLIENTS).map((mode) => [transport, mode])),
  ...MORE_TRANSPORTS.map((transport) => [transport, 'stomp-over']),
];

for (const [transport, mode] of runs) {
  const client = CLIENTS[mode];
  {
    test(`${client.label} over SockJS ${transport} in Chromium`, { timeout: 90_000 }, async () => {
      const page = await open(`/sockjs.html?transport=${transport}${client.query}`);
      const demo = await page.evaluate(() => ({
        mode: window.sockjsDemo.mode,
        transport: window.sockjsDemo.transport,
        connected: window.sockjsDemo.connected,
      }));
      assert.equal(demo.mode, mode);
      assert.equal(demo.transport, transport, 'SockJS used the forced transport');
      assert.equal(demo.connected.version, client.version);
      assert.equal(await page.locator('#transport').textContent(), transport);
      const key = STATS_KEY[transport];
      await eventually(async () => (await stats()).transports[key] === 1, 3_000, `one ${key} session in /api/stats`);

      const topic = `/topic/browser-${mode}-${transport}`;
      const receipt = await inPage(
        page,
        (t) => window.sockjsDemo.subscribe(t, 'sub-browser'),
        topic,
        5_000,
        'the RECEIPT for SUBSCRIBE',
      );
      assert.equal(receipt, 'sub-browser');

      // 100 messages from the page to itself, in order, Chinese bodies and custom headers.
      await page.evaluate((t) => {
        for (let i = 0; i < 100; i += 1) {
          window.sockjsDemo.publish(t, `第${i}条消息：你好，世界！%41 100%`, { 'x-seq': String(i), 'x-greeting': '你好' });
        }
      }, topic);
      await page.waitForFunction((t) => (window.sockjsDemo.received[t]?.length ?? 0) >= 100, topic, {
        timeout: 20_000,
      });
      const received = await page.evaluate((t) => window.sockjsDemo.received[t], topic);
      assert.equal(received.length, 100);
      received.forEach((message, i) => {
        assert.equal(message.headers['x-seq'], String(i), `message ${i} in order`);
        assert.equal(message.body, `第${i}条消息：你好，世界！%41 100%`);
        assert.equal(message.headers['x-greeting'], '你好');
      });

      // A 60,000-byte body (30,000 bytes of Chinese, 30,000 of ASCII).
      const large = await inPage(
        page,
        async (t) => {
          const body = '大'.repeat(10_000) + 'x'.repeat(30_000);
          window.sockjsDemo.publish(t, body, { 'x-size': '60000' });
          const deadline = Date.now() + 15_000;
          while ((window.sockjsDemo.received[t]?.length ?? 0) < 101 && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          const message = window.sockjsDemo.received[t][100];
          return message && {
            same: message.body === body,
            bytes: new TextEncoder().encode(message.body).length,
            size: message.headers['x-size'],
          };
        },
        topic,
        20_000,
        'the 60,000-byte message',
      );
      assert.deepEqual(large, { same: true, bytes: 60_000, size: '60000' });

      // Idle: SockJS heart-beat frames keep coming (every 500 ms here).
      const beats = await page.evaluate(() => window.sockjsDemo.heartbeats);
      await page.waitForFunction((n) => window.sockjsDemo.heartbeats >= n + 2, beats, { timeout: 5_000 });

      // The seeds' path: the form SENDs to /app/v1/chat, the page shows /topic/game_chat.
      const greeting = `大家好 via ${transport}`;
      await page.fill('#send input[name=content]', greeting);
      await page.click('#send button');
      await page.locator('#messages li', { hasText: greeting }).waitFor({ timeout: 10_000 });

      // The viewport: the newest of the 100+ messages are at the top.
      await page.screenshot({ path: path.join(output, `sockjs-${client.label}-${transport}.png`) });

      const bye = await inPage(page, (r) => window.sockjsDemo.disconnect(r), 'bye-browser', 5_000, 'the RECEIPT for DISCONNECT');
      assert.equal(bye, 'bye-browser');
      await eventually(async () => !(await stats()).transports[key], 5_000, `no ${key} session left`);
      assert.deepEqual(
        await page.evaluate(() => window.sockjsDemo.errors),
        [],
        'no STOMP ERROR frames',
      );
      // sockjs-client's jsonp receiver cannot abort a poll in flight: closing removes its
      // callback, and the server's answer to that last poll (the close frame) then
      // calls a function that is gone. A client-side limitation, not a server error.
      const errors = transport === 'jsonp-polling'
        ? page.errors.filter((error) => !/^_jp\.a\w+ is not a function$/.test(error))
        : page.errors;
      assert.deepEqual(errors, []);
      await page.close();
    });
  }
}

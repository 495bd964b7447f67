// SockJS on /endpoint-websocket with real clients in Node: sockjs-client under
// @stomp/stompjs (webSocketFactory) and under the old stompjs 2.3.3 (Stomp.over),
// forced onto each of websocket, xhr-streaming and xhr-polling; then the protocol's
// bad inputs over plain HTTP, an abandoned polling session, and a slow consumer.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';
import { startBroker } from './broker.js';
import {
  closeFrame,
  eventually,
  openStream,
  parseStomp,
  request,
  sleep,
  stompFrame,
  stompText,
  withTimeout,
  writeConfig,
} from './sockjs-http.js';

const require = createRequire(import.meta.url);
const SockJS = require('sockjs-client');
const Stomp = require('stompjs');

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling'];
/** The `transport` attribute /api/stats counts each SockJS transport under. */
const STATS_KEY = {
  websocket: 'sockjs/websocket',
  'xhr-streaming': 'sockjs/xhr_streaming',
  'xhr-polling': 'sockjs/xhr',
};

function httpBase(broker) {
  return `http://${broker.address}`;
}

async function stats(base) {
  const response = await request('GET', `${base}/api/stats`);
  assert.equal(response.status, 200);
  return JSON.parse(response.text);
}

async function sessions(base) {
  const response = await request('GET', `${base}/api/sessions`);
  assert.equal(response.status, 200);
  return JSON.parse(response.text);
}

const countOf = (s, key) => s.transports[key] ?? 0;

/** A message body of exactly `bytes` UTF-8 bytes, Chinese and ASCII. */
function bodyOfBytes(bytes) {
  const chinese = '大'.repeat(Math.floor(bytes / 6)); // 3 bytes each: half the bytes
  const body = chinese + 'x'.repeat(bytes - Buffer.byteLength(chinese));
  assert.equal(Buffer.byteLength(body), bytes);
  return body;
}

const chineseBody = (i) => `第${i}条消息：你好，世界！%41 100%`;

/** Collects messages; `all` resolves when `count` have arrived. */
function collector(count) {
  const received = [];
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  return {
    received,
    all,
    onMessage(message) {
      received.push(message);
      if (received.length === count) done(received);
    },
  };
}

/** @stomp/stompjs over a SockJS forced onto one transport; counts SockJS heart-beats. */
function connectStompjs(base, transport, options = {}) {
  const socket = { sock: null, heartbeats: 0 };
  return withTimeout(
    new Promise((resolve, reject) => {
      const client = new Client({
        webSocketFactory: () => {
          socket.sock = new SockJS(`${base}/endpoint-websocket`, null, { transports: [transport] });
          socket.sock.addEventListener('heartbeat', () => {
            socket.heartbeats += 1;
          });
          return socket.sock;
        },
        reconnectDelay: 0,
        ...options,
      });
      client.onConnect = (frame) => {
        client.onWebSocketClose = () => {};
        resolve({ client, socket, connected: frame });
      };
      client.onStompError = (frame) => reject(new Error(`STOMP ERROR: ${frame.headers.message}`));
      client.onWebSocketClose = (event) =>
        reject(new Error(`SockJS closed before CONNECTED: ${event.code} ${event.reason}`));
      client.activate();
    }),
    10_000,
    `CONNECTED from @stomp/stompjs over SockJS ${transport}`,
  );
}

function subscribe(client, destination, onMessage, receipt) {
  const done = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.subscribe(destination, onMessage, { receipt });
  return withTimeout(done, 5_000, `RECEIPT ${receipt} for SUBSCRIBE ${destination}`);
}

/** DISCONNECT with a receipt; resolves with the RECEIPT frame once the socket closed. */
async function disconnect(client, receipt) {
  const frame = new Promise((resolve) => {
    client.onDisconnect = resolve;
  });
  client.configure({ disconnectHeaders: { receipt } });
  await withTimeout(client.deactivate(), 5_000, `deactivate() after DISCONNECT ${receipt}`);
  return withTimeout(frame, 1_000, `RECEIPT ${receipt} for DISCONNECT`);
}

describe('sockjs-client with real STOMP clients', () => {
  let broker;
  let base;
  before(async () => {
    // SockJS heart-beat frames every 300 ms so an idle session shows them quickly.
    broker = await startBroker({ args: ['--config', writeConfig('[sockjs]\nheartbeat_ms = 300\n')] });
    base = httpBase(broker);
  });
  after(async () => {
    assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
  });

  for (const transport of TRANSPORTS) {
    const key = STATS_KEY[transport];

    test(`@stomp/stompjs over SockJS ${transport}`, { timeout: 60_000 }, async () => {
      const topic = `/topic/sockjs-${transport}`;
      const { client: subscriber, socket, connected } = await connectStompjs(base, transport);
      assert.equal(socket.sock.transport, transport, 'SockJS used the forced transport');
      assert.equal(connected.headers.version, '1.2');
      const { client: publisher, socket: publisherSocket } = await connectStompjs(base, transport);
      assert.equal(publisherSocket.sock.transport, transport);

      // Both sessions show under the sub-transport while connected.
      await eventually(async () => countOf(await stats(base), key) === 2, 3_000, `two ${key} sessions in /api/stats`);
      const listed = (await sessions(base)).find((s) => s.id === connected.headers.session);
      assert.ok(listed, `session ${connected.headers.session} in /api/sessions`);
      // /api/sessions: transport "sockjs" and the sub-transport as in the stats key.
      assert.equal(`${listed.attributes.transport}/${listed.attributes.sockjs_transport}`, key);

      // 100 messages in order, Chinese bodies, custom headers (one with a colon).
      const hundred = collector(100);
      await subscribe(subscriber, topic, hundred.onMessage, `sub-${transport}`);
      for (let i = 0; i < 100; i += 1) {
        publisher.publish({
          destination: topic,
          body: chineseBody(i),
          headers: { 'x-seq': String(i), 'x-greeting': '你好:世界', 'content-type': 'text/plain;charset=utf-8' },
        });
      }
      const messages = await withTimeout(hundred.all, 15_000, `100 messages over ${transport}`);
      messages.forEach((message, i) => {
        assert.equal(message.headers['x-seq'], String(i), `message ${i} in order`);
        assert.equal(message.body, chineseBody(i));
        assert.equal(message.headers['x-greeting'], '你好:世界');
        assert.equal(message.headers.destination, topic);
      });

      // A 60,000-byte body, sent by the subscriber to itself.
      const body = bodyOfBytes(60_000);
      subscriber.publish({ destination: topic, body, headers: { 'x-size': '60000' } });
      await eventually(() => hundred.received.length >= 101, 15_000, `the 60,000-byte message over ${transport}`);
      const received = hundred.received[100];
      assert.equal(Buffer.byteLength(received.body), 60_000);
      assert.equal(received.body, body);
      assert.equal(received.headers['x-size'], '60000');

      // An idle session receives SockJS heart-beat frames ('h'): at least two more.
      const beats = socket.heartbeats;
      await eventually(() => socket.heartbeats >= beats + 2, 3_000, `two SockJS heart-beats over ${transport}`);
      // ... and still works afterwards.
      const after = collector(1);
      await subscribe(subscriber, `${topic}/after`, after.onMessage, `sub-after-${transport}`);
      publisher.publish({ destination: `${topic}/after`, body: '心跳之后' });
      const [afterIdle] = await withTimeout(after.all, 5_000, 'a message after the idle period');
      assert.equal(afterIdle.body, '心跳之后');

      const bye = await disconnect(subscriber, `bye-${transport}`);
      assert.equal(bye.headers['receipt-id'], `bye-${transport}`);
      await disconnect(publisher, `bye-publisher-${transport}`);
      await eventually(async () => countOf(await stats(base), key) === 0, 5_000, `no ${key} sessions left`);
    });
  }

  for (const transport of TRANSPORTS) {
    test(`stompjs 2.3.3 Stomp.over(new SockJS()) over ${transport}`, { timeout: 60_000 }, async () => {
      const topic = `/topic/legacy-${transport}`;
      const sock = new SockJS(`${base}/endpoint-websocket`, null, { transports: [transport] });
      const client = Stomp.over(sock);
      client.debug = null;
      const receipts = new Map();
      client.onreceipt = (frame) => receipts.get(frame.headers['receipt-id'])?.(frame);
      const waitReceipt = (id) =>
        withTimeout(new Promise((resolve) => receipts.set(id, resolve)), 5_000, `RECEIPT ${id}`);
      const connected = await withTimeout(
        new Promise((resolve, reject) => {
          client.connect({}, resolve, (error) => {
            reject(new Error(typeof error === 'string' ? error : error.headers.message));
          });
        }),
        10_000,
        `CONNECTED from stompjs 2.3.3 over ${transport}`,
      );
      assert.equal(sock.transport, transport);
      assert.equal(connected.headers.version, '1.1', 'stompjs 2.3.3 offers 1.1 and 1.0');

      const received = [];
      const subscribed = waitReceipt(`legacy-sub-${transport}`);
      client.subscribe(topic, (message) => received.push(message), { receipt: `legacy-sub-${transport}` });
      await subscribed;
      for (let i = 0; i < 100; i += 1) {
        client.send(topic, { 'x-seq': String(i), 'x-greeting': '你好' }, chineseBody(i));
      }
      await eventually(() => received.length >= 100, 15_000, `100 messages to stompjs 2.3.3 over ${transport}`);
      received.forEach((message, i) => {
        assert.equal(message.headers['x-seq'], String(i));
        assert.equal(message.headers['x-greeting'], '你好');
        assert.equal(message.body, chineseBody(i));
      });

      // stompjs 2.3.3 sends a frame over 16 KiB as several SockJS messages.
      const body = bodyOfBytes(60_000);
      client.send(topic, { 'x-size': '60000' }, body);
      await eventually(() => received.length >= 101, 15_000, `the 60,000-byte message over ${transport}`);
      assert.equal(received[100].body, body);
      assert.equal(received[100].headers['x-size'], '60000');

      // DISCONNECT with a receipt (disconnect() itself would close before it arrives).
      const bye = waitReceipt(`legacy-bye-${transport}`);
      const closed = new Promise((resolve) => sock.addEventListener('close', resolve));
      sock.send(Stomp.Frame.marshall('DISCONNECT', { receipt: `legacy-bye-${transport}` }));
      await bye;
      sock.close();
      await withTimeout(closed, 5_000, 'the SockJS close event');
      await eventually(async () => countOf(await stats(base), STATS_KEY[transport]) === 0, 5_000, 'the session gone');
    });
  }
});

describe('SockJS over plain HTTP: bad input and abandoned sessions', () => {
  let broker;
  let base;
  let sockjs;
  before(async () => {
    broker = await startBroker({
      args: ['--config', writeConfig('[sockjs]\ndisconnect_delay_ms = 500\nheartbeat_ms = 25000\n')],
    });
    base = httpBase(broker);
    sockjs = `${base}/endpoint-websocket`;
  });
  after(async () => {
    assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
  });

  let counter = 0;
  const sessionUrl = () => `${sockjs}/000/t${process.pid}n${(counter += 1)}`;
  const CONNECT = stompFrame('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' });
  const send = (url, frames) =>
    request('POST', `${url}/xhr_send`, {
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
      body: JSON.stringify(frames),
    });

  test('GET /info: websocket, cookie_needed, origins, entropy', async () => {
    const response = await request('GET', `${sockjs}/info`);
    assert.equal(response.status, 200);
    assert.match(response.headers['content-type'], /^application\/json/);
    const info = JSON.parse(response.text);
    assert.equal(info.websocket, true);
    assert.equal(typeof info.cookie_needed, 'boolean');
    assert.deepEqual(info.origins, ['*:*']);
    assert.equal(typeof info.entropy, 'number');
    const again = JSON.parse((await request('GET', `${sockjs}/info`)).text);
    assert.notEqual(again.entropy, info.entropy, 'entropy is random per request');
    assert.match(response.headers['cache-control'] ?? '', /no-store|no-cache/);
  });

  test('OPTIONS /info: 204 with CORS headers', async () => {
    // sockjs-protocol 0.3.3 (InfoTest.test_options): 204, the methods, a year of
    // caching, the Origin echoed (with credentials), or "*" without one.
    const problems = [];
    const expect = (what, got, ok) => {
      if (!ok(got)) problems.push(`${what}: got ${JSON.stringify(got)}`);
    };
    for (const origin of [base, null]) {
      const headers = { 'Access-Control-Request-Method': 'GET' };
      if (origin) headers.Origin = origin;
      const { status, text, headers: h } = await request('OPTIONS', `${sockjs}/info`, { headers });
      const label = origin ? 'with Origin' : 'without Origin';
      expect(`${label}: status 204`, status, (got) => got === 204);
      expect(`${label}: empty body`, text, (got) => got === '');
      expect(`${label}: Access-Control-Allow-Methods has OPTIONS and GET`, h['access-control-allow-methods'], (got) =>
        ['GET', 'OPTIONS'].every((method) => (got ?? '').split(/\s*,\s*/).includes(method)),
      );
      expect(`${label}: Access-Control-Allow-Origin`, h['access-control-allow-origin'], (got) => got === (origin ?? '*'));
      expect(`${label}: Access-Control-Max-Age over 1000000`, h['access-control-max-age'], (got) => Number(got) > 1e6);
      expect(`${label}: Cache-Control public, max-age of a year`, h['cache-control'], (got) =>
        /public/.test(got) && /max-age=[1-9][0-9]{6}/.test(got),
      );
      expect(`${label}: Expires`, h.expires, Boolean);
    }
    assert.deepEqual(problems, []);
  });

  test('/iframe.html names client_library_url and has an ETag; If-None-Match gives 304', async () => {
    const response = await request('GET', `${sockjs}/iframe.html`);
    assert.equal(response.status, 200);
    assert.match(response.headers['content-type'], /^text\/html/);
    assert.ok(response.text.includes('/node_modules/sockjs-client/dist/sockjs.min.js'), response.text);
    const etag = response.headers.etag;
    assert.ok(etag, 'ETag header');
    const cached = await request('GET', `${sockjs}/iframe.html`, { headers: { 'If-None-Match': etag } });
    assert.equal(cached.status, 304);
    assert.equal(cached.text, '');
    // The library itself is served where the iframe looks for it.
    const library = await request('GET', `${base}/node_modules/sockjs-client/dist/sockjs.min.js`);
    assert.equal(library.status, 200);
  });

  test('xhr_send to a session never opened: 404', async () => {
    const response = await send(sessionUrl(), [CONNECT]);
    assert.equal(response.status, 404);
  });

  test('a dot in the server or session id: 404', async () => {
    for (const path of ['/000/a.b/xhr', '/0.0/abc/xhr', '/000/a.b/xhr_streaming']) {
      const response = await request('POST', `${sockjs}${path}`);
      assert.equal(response.status, 404, `POST ${path}`);
    }
    const response = await request('GET', `${sockjs}/000/a.b/jsonp?c=cb`);
    assert.equal(response.status, 404);
  });

  test('jsonp without a callback, or with an invalid one: 500', async () => {
    const missing = await request('GET', `${sessionUrl()}/jsonp`);
    assert.equal(missing.status, 500);
    assert.match(missing.text, /"callback" parameter required/);
    const invalid = await request('GET', `${sessionUrl()}/jsonp?c=${encodeURIComponent('alert(1)')}`);
    assert.equal(invalid.status, 500);
    assert.match(invalid.text, /"callback" parameter/);
    const good = await request('GET', `${sessionUrl()}/jsonp?c=cb_1`);
    assert.equal(good.status, 200);
    assert.match(good.text, /cb_1\("o"\);/);
  });

  test('malformed xhr_send bodies: 500 "Payload expected." and "Broken JSON encoding."', async () => {
    const url = sessionUrl();
    const opened = await request('POST', `${url}/xhr`);
    assert.equal(opened.status, 200);
    assert.equal(opened.text, 'o\n');
    const empty = await request('POST', `${url}/xhr_send`, { body: '' });
    assert.equal(empty.status, 500);
    assert.match(empty.text, /^Payload expected\./);
    const broken = await request('POST', `${url}/xhr_send`, { body: '["CONNECT' });
    assert.equal(broken.status, 500);
    assert.match(broken.text, /^Broken JSON encoding\./);
    // The session is still usable.
    const ok = await send(url, [CONNECT]);
    assert.equal(ok.status, 204);
    const poll = await request('POST', `${url}/xhr`);
    assert.equal(parseStomp(stompText(poll.text.split('\n')))[0]?.command, 'CONNECTED', poll.text);
  });

  test('a second streaming receiver gets c[2010,"Another connection still open"]', async () => {
    const url = sessionUrl();
    const first = openStream(`${url}/xhr_streaming`);
    assert.equal((await first.response).status, 200);
    await first.waitFor((line) => line === 'o', 5_000);
    assert.equal(first.lines[0], 'h'.repeat(2048), 'the 2 KiB prelude');

    const second = openStream(`${url}/xhr_streaming`);
    assert.equal((await second.response).status, 200);
    const ended = await Promise.race([second.ended, sleep(5_000).then(() => null)]);
    second.close();
    const lines = second.lines.filter((line) => line && !/^h+$/.test(line));
    assert.ok(ended, `the second receiver's response did not end within 5 s; it got ${JSON.stringify(lines)}`);
    assert.deepEqual(lines, ['c[2010,"Another connection still open"]']);

    // The first receiver still serves the session.
    assert.equal((await send(url, [CONNECT])).status, 204);
    await first.waitFor((line) => line.startsWith('a'), 5_000);
    assert.equal(first.stompFrames()[0].command, 'CONNECTED');
    first.close();
  });

  test('an oversized xhr_send: 413 naming limits.max_frame_size, then ERROR and c[1009,...]', async () => {
    const url = sessionUrl();
    const receiver = openStream(`${url}/xhr_streaming`);
    await receiver.waitFor((line) => line === 'o', 5_000);
    assert.equal((await send(url, [CONNECT])).status, 204);
    await receiver.waitFor((line) => line.startsWith('a'), 5_000);
    assert.equal(receiver.stompFrames()[0].command, 'CONNECTED');

    const huge = stompFrame('SEND', { destination: '/topic/huge' }, 'x'.repeat(1024 * 1024));
    const response = await send(url, [huge]);
    assert.equal(response.status, 413);
    assert.match(response.text, /limits\.max_frame_size/);

    const close = await receiver.waitFor((line) => line.startsWith('c['), 5_000);
    assert.equal(closeFrame(close).code, 1009, close);
    const error = receiver.stompFrames().find((frame) => frame.command === 'ERROR');
    assert.ok(error, `an ERROR before the close frame: ${receiver.lines.join(' | ').slice(0, 500)}`);
    assert.match(error.headers.message, /max_frame_size/);
    await withTimeout(receiver.ended, 5_000, 'the streaming response to end after the close frame');
  });

  test('a polling client that never comes back is gone after disconnect_delay_ms', async () => {
    const url = sessionUrl();
    assert.equal((await request('POST', `${url}/xhr`)).text, 'o\n');
    assert.equal((await send(url, [CONNECT])).status, 204);
    const poll = await request('POST', `${url}/xhr`);
    const [connected] = parseStomp(stompText(poll.text.split('\n')));
    assert.equal(connected?.command, 'CONNECTED', poll.text);
    const id = connected.headers.session;
    const start = Date.now();
    assert.ok((await sessions(base)).some((s) => s.id === id), 'listed right after its last poll');
    assert.ok(countOf(await stats(base), 'sockjs/xhr') >= 1);
    // No further poll: the session ends disconnect_delay_ms (500) after the last one.
    await eventually(
      async () => !(await sessions(base)).some((s) => s.id === id),
      2_500,
      `session ${id} removed after the client stopped polling`,
    );
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 300, `removed after ${elapsed} ms, before disconnect_delay_ms`);
    assert.equal(countOf(await stats(base), 'sockjs/xhr'), 0);
  });
});

describe('a SockJS session over the slow-consumer limit', () => {
  let broker;
  let base;
  before(async () => {
    broker = await startBroker({
      args: [
        '--config',
        writeConfig(
          [
            '[limits]',
            'outbound_queue_bytes = 65536',
            'outbound_queue_max_bytes = 131072',
            'outbound_queue_grace_ms = 200',
            '[sockjs]',
            'message_cache_size = 10',
            'disconnect_delay_ms = 5000',
            '',
          ].join('\n'),
        ),
      ],
    });
    base = httpBase(broker);
  });
  after(async () => {
    assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
  });

  test('a polling session that stops polling while lots is published is cut', { timeout: 30_000 }, async (t) => {
    const url = `${base}/endpoint-websocket/123/slow${process.pid}`;
    assert.equal((await request('POST', `${url}/xhr`)).text, 'o\n');
    const frames = [
      stompFrame('CONNECT', { 'accept-version': '1.2', host: 'localhost', 'heart-beat': '0,0' }),
      stompFrame('SUBSCRIBE', { id: 'flood', destination: '/topic/flood', receipt: 'subscribed' }),
    ];
    const sent = await request('POST', `${url}/xhr_send`, { body: JSON.stringify(frames) });
    assert.equal(sent.status, 204);
    // Poll until CONNECTED and the RECEIPT are in, then never again.
    let text = '';
    await eventually(
      async () => {
        const poll = await request('POST', `${url}/xhr`);
        text += poll.text;
        return parseStomp(stompText(text.split('\n'))).some((frame) => frame.command === 'RECEIPT');
      },
      5_000,
      'CONNECTED and RECEIPT by polling',
    );
    const id = parseStomp(stompText(text.split('\n')))[0].headers.session;
    assert.ok((await sessions(base)).some((s) => s.id === id));

    // Another client fills the poller's message cache (10) first, so that the
    // session's writer is stalled, then publishes ~1 MB to the same topic.
    const publisher = await new Promise((resolve, reject) => {
      const client = new Client({
        webSocketFactory: () => new WebSocket(`ws://${broker.address}/endpoint-websocket`, ['v12.stomp']),
        reconnectDelay: 0,
      });
      client.onConnect = () => resolve(client);
      client.onStompError = (frame) => reject(new Error(frame.headers.message));
      client.activate();
    });
    for (let i = 0; i < 20; i += 1) {
      publisher.publish({ destination: '/topic/flood', body: `预热 ${i}` });
    }
    await sleep(300);
    assert.ok((await sessions(base)).some((s) => s.id === id), 'a full cache alone does not end the session');
    const chunk = '慢'.repeat(1000); // 3,000 bytes
    const flooded = Date.now();
    for (let i = 0; i < 300; i += 1) {
      publisher.publish({ destination: '/topic/flood', body: `${i} ${chunk}` });
    }
    // Cut at once (over outbound_queue_max_bytes), not disconnect_delay_ms (5 s) later.
    await eventually(
      async () => !(await sessions(base)).some((s) => s.id === id),
      2_000,
      `the slow SockJS session ${id} cut off`,
    );
    t.diagnostic(`cut ${Date.now() - flooded} ms after the flood began`);
    assert.equal(countOf(await stats(base), 'sockjs/xhr'), 0);
    await publisher.deactivate();

    // The client's next poll learns the session is closed (a close frame, not a new session).
    const poll = await request('POST', `${url}/xhr`);
    assert.equal(poll.status, 200);
    const lines = poll.text.split('\n').filter(Boolean);
    assert.notEqual(lines[0], 'o', `a new session was opened instead: ${poll.text.slice(0, 200)}`);
    let close = lines.map(closeFrame).find(Boolean);
    for (let i = 0; !close && i < 5; i += 1) {
      // Messages cached before the cut may come first.
      const next = await request('POST', `${url}/xhr`);
      close = next.text.split('\n').map(closeFrame).find(Boolean);
      if (next.text === 'o\n') break;
    }
    assert.ok(close, 'a c[code,reason] frame');
    assert.equal(close.code, 1008, `c[${close.code},${JSON.stringify(close.reason)}]`);
    t.diagnostic(`the next poll got c[${close.code},${JSON.stringify(close.reason)}]`);
  });
});


// Plain (non-STOMP) WebSocket endpoints, the seeds' @ServerEndpoint classes
// declared in broker.toml ([[websocket.endpoint]]), with the `ws` package
// against the real broker: the open text, echoes and replies, messages to one
// user (the HTTP trigger, a STOMP SEND to /chat/single/{id}), broadcasts to 200
// sockets, online counts in /api/stats, STOMP and plain sockets talking both
// ways, bad input closed with a code and a reason while others carry on, and
// graceful shutdown. Every wait is bounded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';
import { startBroker } from './broker.js';
import { eventually, request, sleep, withTimeout, writeConfig } from './sockjs-http.js';

const WAIT_MS = 10_000;

let broker;
before(async () => {
  broker = await startBroker();
});
after(async () => {
  assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
});

/**
 * Opens a plain WebSocket on `path`: resolves once open with `next()` (the
 * next text message), `texts(n)`, `send(text)`, `closed` (the close code and
 * reason the client saw) and `close()`.
 */
async function openSocket(path, address = broker.address) {
  const ws = new WebSocket(`ws://${address}${path}`);
  const inbox = [];
  let waiter = null;
  const push = (item) => {
    inbox.push(item);
    if (waiter) {
      const wake = waiter;
      waiter = null;
      wake();
    }
  };
  ws.on('message', (data, isBinary) => push(isBinary ? { binary: data } : data.toString('utf8')));
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => {
      const event = { code, reason: reason.toString('utf8') };
      push({ closed: event });
      resolve(event);
    });
  });
  ws.on('error', () => {
    // Reported through `close` (and `opened` below).
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', (error) => reject(new Error(`open ${path}: ${error.message}`)));
    }),
    WAIT_MS,
    `${path} to open`,
  );
  const socket = {
    ws,
    path,
    closed: withTimeout(closed, 30_000, `${path} to close`),
    /** The next message, which must be text; `what` names it in a timeout. */
    async next(what = 'a text message', ms = WAIT_MS) {
      if (inbox.length === 0) {
        await withTimeout(
          new Promise((resolve) => {
            waiter = resolve;
          }),
          ms,
          `${what} on ${path}`,
        );
      }
      const item = inbox.shift();
      if (typeof item !== 'string') {
        throw new Error(`${path}: expected ${what}, got ${JSON.stringify(item)}`);
      }
      return item;
    },
    async texts(count, what = `${count} messages`, ms = WAIT_MS) {
      const out = [];
      for (let i = 0; i < count; i += 1) out.push(await socket.next(`${what} (#${i})`, ms));
      return out;
    },
    /** Whatever arrived and was not read yet. */
    pending: () => inbox.slice(),
    send(text, options) {
      ws.send(text, options);
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return socket.closed;
      ws.close(1000);
      return socket.closed;
    },
  };
  socket.closed.catch(() => {});
  return socket;
}

/** A path the server should refuse: resolves with the HTTP status and body. */
function refusedHandshake(path, address = broker.address) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${address}${path}`);
      ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => {
          resolve({ status: res.statusCode, body });
          req.destroy();
        });
      });
      ws.on('open', () => {
        ws.terminate();
        reject(new Error(`${path}: the handshake succeeded`));
      });
      ws.on('error', (error) => reject(new Error(`${path}: ${error.message}`)));
    }),
    WAIT_MS,
    `the refusal of ${path}`,
  );
}

async function getJson(pathAndQuery, address = broker.address) {
  const response = await request('GET', `http://${address}${pathAndQuery}`);
  assert.equal(response.status, 200, `GET ${pathAndQuery}: ${response.status} ${response.text}`);
  return JSON.parse(response.text);
}

async function endpointSessions(endpoint, address = broker.address) {
  const stats = await getJson('/api/stats', address);
  const entry = stats.endpoints?.[endpoint];
  assert.ok(entry, `/api/stats endpoints has no ${endpoint}: ${JSON.stringify(stats.endpoints)}`);
  return entry.sessions;
}

async function waitForSessions(endpoint, expected, address = broker.address) {
  let last;
  try {
    await eventually(
      async () => {
        last = await endpointSessions(endpoint, address);
        return last === expected;
      },
      WAIT_MS,
      `${endpoint} sessions to be ${expected}`,
    );
  } catch (error) {
    throw new Error(`${error.message} (last seen: ${last})`);
  }
}

async function apiPublish(destination, body, address = broker.address) {
  const response = await request('POST', `http://${address}/api/publish`, {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ destination, body }),
  });
  assert.equal(response.status, 200, `POST /api/publish: ${response.status} ${response.text}`);
  return JSON.parse(response.text);
}

/** A connected @stomp/stompjs client. */
function connectStomp(url = broker.url) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const client = new Client({
        webSocketFactory: () => new WebSocket(url, Versions.default.protocolVersions()),
        reconnectDelay: 0,
      });
      client.onConnect = () => resolve(client);
      client.onStompError = (frame) => reject(new Error(frame.headers.message));
      client.onWebSocketError = (event) => reject(new Error(`websocket error: ${event.message ?? event}`));
      client.activate();
    }),
    WAIT_MS,
    'the STOMP client to connect',
  );
}

/** Subscribes and waits for the receipt; returns an inbox with `next()`. */
async function stompSubscribe(client, destination) {
  const inbox = [];
  let waiter = null;
  const receipt = `sub-${Math.random().toString(36).slice(2)}`;
  const ready = new Promise((resolve) => client.watchForReceipt(receipt, resolve));
  client.subscribe(
    destination,
    (message) => {
      inbox.push(message);
      if (waiter) {
        const wake = waiter;
        waiter = null;
        wake();
      }
    },
    { receipt },
  );
  await withTimeout(ready, WAIT_MS, `the receipt for SUBSCRIBE ${destination}`);
  return {
    inbox,
    async next(what = `a MESSAGE from ${destination}`) {
      if (inbox.length === 0) {
        await withTimeout(
          new Promise((resolve) => {
            waiter = resolve;
          }),
          WAIT_MS,
          what,
        );
      }
      return inbox.shift();
    },
  };
}

/** The same check after each bad input: an open socket still echoes, a new one still opens. */
async function stillWorks(canary, after) {
  const text = `still here after ${after}`;
  canary.send(text);
  assert.equal(await canary.next(`the canary's echo after ${after}`), text);
  const fresh = await openSocket('/ws/asset');
  assert.equal(await fresh.next(`the open text of a new socket after ${after}`), '连接成功');
  fresh.send('ok?');
  assert.equal(await fresh.next(), '收到消息，消息内容：ok?');
  await fresh.close();
}

test('/socket/{id} greets, echoes and shows up in /api/sessions', { timeout: 60_000 }, async () => {
  const seven = await openSocket('/socket/7');
  assert.equal(await seven.next('the open text'), '-连接已建立-');
  for (const text of ['hello', '你好，世界', 'a:b\nc\u0000d', '{"content":"json stays text"}', '']) {
    seven.send(text);
    assert.equal(await seven.next(`the echo of ${JSON.stringify(text)}`), text);
  }
  // Many in a row come back in order.
  for (let i = 0; i < 50; i += 1) seven.send(`n${i}`);
  assert.deepEqual(await seven.texts(50, 'echoes'), Array.from({ length: 50 }, (_, i) => `n${i}`));
  // A message close to the limit (65,536 bytes less 512 for the SEND's headers) is echoed whole.
  const large = '大'.repeat(21_000); // 63,000 bytes of UTF-8
  seven.send(large);
  assert.equal(await seven.next('the echo of 63,000 bytes'), large);

  const sessions = await getJson('/api/sessions');
  const mine = sessions.find((s) => s.attributes?.['path.id'] === '7');
  assert.ok(mine, `socket 7 in /api/sessions: ${JSON.stringify(sessions)}`);
  assert.equal(mine.user, '7');
  assert.equal(mine.attributes.transport, 'plain-websocket');
  assert.equal(mine.attributes.endpoint, '/socket/{id}');
  await seven.close();
});

test('/ws/asset greets and answers every message', { timeout: 60_000 }, async () => {
  const asset = await openSocket('/ws/asset');
  assert.equal(await asset.next('the open text'), '连接成功');
  asset.send('消息发送测试(From Client)');
  assert.equal(await asset.next('the reply'), '收到消息，消息内容：消息发送测试(From Client)');
  asset.send('second');
  assert.equal(await asset.next('the second reply'), '收到消息，消息内容：second');
  const sessions = await getJson('/api/sessions');
  const mine = sessions.find((s) => s.attributes?.endpoint === '/ws/asset');
  assert.ok(mine, `the /ws/asset socket in /api/sessions: ${JSON.stringify(sessions)}`);
  assert.equal(mine.attributes.transport, 'plain-websocket');
  await asset.close();
});

test('online counts in /api/stats go 0 -> 2 -> 0', { timeout: 60_000 }, async () => {
  await waitForSessions('/socket/{id}', 0);
  await waitForSessions('/ws/asset', 0);
  const a = await openSocket('/socket/31');
  const b = await openSocket('/socket/32');
  await a.next();
  await b.next();
  assert.equal(await endpointSessions('/socket/{id}'), 2);
  assert.equal(await endpointSessions('/ws/asset'), 0);
  const asset = await openSocket('/ws/asset');
  await asset.next();
  assert.equal(await endpointSessions('/ws/asset'), 1);
  assert.equal(await endpointSessions('/socket/{id}'), 2);
  await a.close();
  await waitForSessions('/socket/{id}', 1);
  // A socket that goes away without a close handshake is counted out too.
  b.ws.terminate();
  await waitForSessions('/socket/{id}', 0);
  await asset.close();
  await waitForSessions('/ws/asset', 0);
});

test('to one user: the HTTP trigger and a STOMP SEND to /chat/single/7 reach 7, not 8', { timeout: 60_000 }, async () => {
  const seven = await openSocket('/socket/7');
  const eight = await openSocket('/socket/8');
  assert.equal(await seven.next(), '-连接已建立-');
  assert.equal(await eight.next(), '-连接已建立-');

  // sendToMessageById(7, ...) through the seeds' HTTP trigger.
  const trigger = await getJson(`/v1/chat/single?from=1&to=7&content=${encodeURIComponent('hi 七')}`);
  assert.equal(trigger.content, '1 sent: hi 七');
  const body = JSON.parse(await seven.next('the HTTP trigger message'));
  assert.equal(body.content, '1 sent: hi 七');
  assert.equal(typeof body.time, 'number');

  // The same from an unmodified @stomp/stompjs client.
  const stomp = await connectStomp();
  stomp.publish({ destination: '/chat/single/7', body: 'from stomp 你好' });
  assert.equal(await seven.next('the STOMP SEND to /chat/single/7'), 'from stomp 你好');
  stomp.publish({
    destination: '/chat/single/7',
    body: JSON.stringify({ content: 'json from stomp' }),
    headers: { 'content-type': 'application/json' },
  });
  assert.equal(await seven.next(), JSON.stringify({ content: 'json from stomp' }));

  // Then a message to everyone: 8's first message must be it, so 8 got none of the above.
  stomp.publish({ destination: '/topic/game_chat', body: 'everyone' });
  assert.equal(await eight.next('the broadcast on 8'), 'everyone');
  assert.equal(await seven.next('the broadcast on 7'), 'everyone');
  const everyone = await getJson('/v1/chat/http?from=1&to=&content=all');
  assert.equal(everyone.content, 'all');
  for (const socket of [seven, eight]) {
    assert.equal(JSON.parse(await socket.next('the /v1/chat/http message')).content, 'all');
  }
  assert.deepEqual(eight.pending(), []);
  await stomp.deactivate();
  await seven.close();
  await eight.close();
});

test('a broadcast reaches 200 plain sockets, none lost, in order', { timeout: 120_000 }, async () => {
  const COUNT = 200;
  const MESSAGES = 20;
  const sockets = await Promise.all(Array.from({ length: COUNT }, (_, i) => openSocket(`/socket/${1000 + i}`)));
  const assets = await Promise.all(Array.from({ length: COUNT }, () => openSocket('/ws/asset')));
  for (const socket of sockets) assert.equal(await socket.next(), '-连接已建立-');
  for (const socket of assets) assert.equal(await socket.next(), '连接成功');
  // (Sessions of the tests before may take a moment to be counted out.)
  await waitForSessions('/socket/{id}', COUNT);
  await waitForSessions('/ws/asset', COUNT);

  // broadcastInfo: STOMP SENDs to /topic/game_chat from one client, then the HTTP trigger.
  const stomp = await connectStomp();
  const receipt = new Promise((resolve) => stomp.watchForReceipt('last-send', resolve));
  for (let n = 0; n < MESSAGES; n += 1) {
    const headers = n === MESSAGES - 1 ? { receipt: 'last-send' } : {};
    stomp.publish({ destination: '/topic/game_chat', body: `game ${n} 广播`, headers });
  }
  // The HTTP trigger goes after the SENDs: the receipt says they were published.
  await withTimeout(receipt, WAIT_MS, 'the receipt for the last SEND');
  const http = await getJson('/v1/chat/http?from=1&to=&content=last');
  const expected = Array.from({ length: MESSAGES }, (_, n) => `game ${n} 广播`);
  await Promise.all(
    sockets.map(async (socket) => {
      const got = await socket.texts(MESSAGES, `/topic/game_chat messages`);
      assert.deepEqual(got, expected, `${socket.path}`);
      assert.deepEqual(JSON.parse(await socket.next('the /v1/chat/http message')), http);
    }),
  );

  // broadCastInfo on /ws/asset: POST /api/publish to /topic/asset, one after the other.
  for (let n = 0; n < MESSAGES; n += 1) {
    const result = await apiPublish('/topic/asset', `asset ${n}`);
    assert.equal(result.deliveries, COUNT, JSON.stringify(result));
  }
  await Promise.all(
    assets.map(async (socket, index) => {
      // The /topic/game_chat messages above did not reach /ws/asset.
      const got = await socket.texts(MESSAGES, '/topic/asset messages');
      assert.deepEqual(got, Array.from({ length: MESSAGES }, (_, n) => `asset ${n}`), `asset socket ${index}`);
    }),
  );
  // Nothing extra arrived anywhere.
  await sleep(200);
  for (const socket of [...sockets, ...assets]) assert.deepEqual(socket.pending(), [], socket.path);

  await stomp.deactivate();
  await Promise.all([...sockets, ...assets].map((socket) => socket.close()));
  await waitForSessions('/socket/{id}', 0);
  await waitForSessions('/ws/asset', 0);
});

test('a STOMP subscriber and a plain socket see each other on /topic/game_chat', { timeout: 60_000 }, async () => {
  const stomp = await connectStomp();
  const subscription = await stompSubscribe(stomp, '/topic/game_chat');
  const plain = await openSocket('/socket/21');
  assert.equal(await plain.next(), '-连接已建立-');

  // STOMP -> plain, and the STOMP subscriber gets it too.
  stomp.publish({ destination: '/topic/game_chat', body: 'stomp says 你好' });
  assert.equal(await plain.next('the STOMP SEND on the plain socket'), 'stomp says 你好');
  assert.equal((await subscription.next()).body, 'stomp says 你好');
  stomp.publish({ destination: '/chat/single/21', body: 'only to 21' });
  assert.equal(await plain.next('the STOMP SEND to /chat/single/21'), 'only to 21');

  // What the HTTP trigger publishes there reaches both.
  const http = await getJson('/v1/chat/http?from=21&to=&content=from%20http');
  assert.deepEqual(JSON.parse(await plain.next('the HTTP broadcast on the plain socket')), http);
  const message = await subscription.next('the HTTP broadcast on the STOMP subscription');
  assert.deepEqual(JSON.parse(message.body), http);
  assert.equal(message.headers.destination, '/topic/game_chat');

  // The default /socket/{id} does not publish what it is sent: only the echo comes back,
  // even for text that looks like a STOMP frame.
  plain.send('just an echo');
  assert.equal(await plain.next(), 'just an echo');
  const frame = 'SEND\ndestination:/topic/game_chat\n\nsmuggled\u0000';
  plain.send(frame);
  assert.equal(await plain.next(), frame);
  await sleep(200);
  assert.equal(subscription.inbox.length, 0, 'the echo was not published');

  await stomp.deactivate();
  await plain.close();
});

test('plain -> STOMP: an endpoint with publish sends each text as a STOMP SEND', { timeout: 60_000 }, async () => {
  // [[websocket.endpoint]] tables in a config file replace the default list.
  const config = writeConfig(
    [
      '[[websocket.endpoint]]',
      'path = "/room/{name}"',
      'user = "{name}"',
      'publish = "/topic/room"',
      'subscribe = ["/topic/room"]',
      '',
      '[[websocket.endpoint]]',
      'path = "/lobby"',
      'publish = "/app/v1/chat"',
      'subscribe = ["/topic/game_chat"]',
      '',
    ].join('\n'),
  );
  const own = await startBroker({ args: ['--config', config] });
  try {
    const stomp = await connectStomp(own.url);
    const room = await stompSubscribe(stomp, '/topic/room');
    const ann = await openSocket('/room/ann', own.address);
    const bob = await openSocket('/room/bob', own.address);

    for (const text of ['hello from a plain socket', '你好 from ann', 'a:b\nc', 'nul\u0000inside', '']) {
      ann.send(text);
      const message = await room.next(`${JSON.stringify(text)} on the STOMP subscription`);
      assert.equal(message.body, text);
      assert.equal(message.headers.destination, '/topic/room');
      assert.equal(message.headers['content-type'], 'text/plain;charset=UTF-8');
      // Both room sockets are subscribed to /topic/room: ann hears herself, bob hears ann.
      assert.equal(await ann.next(), text);
      assert.equal(await bob.next(), text);
    }

    // STOMP -> plain on the same topic.
    stomp.publish({ destination: '/topic/room', body: 'hello from STOMP' });
    assert.equal(await ann.next('the STOMP SEND on ann'), 'hello from STOMP');
    assert.equal(await bob.next('the STOMP SEND on bob'), 'hello from STOMP');
    assert.equal((await room.next()).body, 'hello from STOMP');

    const sessions = await getJson('/api/sessions', own.address);
    assert.ok(
      sessions.some((s) => s.user === 'ann' && s.attributes?.['path.name'] === 'ann'),
      JSON.stringify(sessions),
    );

    // publish to an /app destination goes through the application handler:
    // the demo's /app/v1/chat publishes the OutMessage to /topic/game_chat.
    const chat = await stompSubscribe(stomp, '/topic/game_chat');
    const lobby = await openSocket('/lobby', own.address);
    lobby.send(JSON.stringify({ content: 'from the lobby' }));
    const out = JSON.parse((await chat.next('the handler output on STOMP')).body);
    assert.equal(out.content, 'from the lobby');
    assert.equal(JSON.parse(await lobby.next('the handler output on the lobby socket')).content, 'from the lobby');

    // The default endpoints are not served under this config.
    assert.equal((await refusedHandshake('/socket/1', own.address)).status, 404);
    const stats = await getJson('/api/stats', own.address);
    assert.deepEqual(Object.keys(stats.endpoints).sort(), ['/lobby', '/room/{name}']);

    await stomp.deactivate();
    await Promise.all([ann.close(), bob.close(), lobby.close()]);
  } finally {
    assert.equal(await own.stop(), 0, 'the second broker exits 0');
  }
});

test('bad input gets its close code and reason; the others carry on', { timeout: 90_000 }, async () => {
  const canary = await openSocket('/socket/99');
  assert.equal(await canary.next(), '-连接已建立-');

  // A binary message: 1003 with a reason.
  let socket = await openSocket('/ws/asset');
  await socket.next();
  socket.send(Buffer.from([0, 1, 2]));
  let closed = await socket.closed;
  assert.equal(closed.code, 1003, JSON.stringify(closed));
  assert.match(closed.reason, /text/, JSON.stringify(closed));
  await stillWorks(canary, 'a binary message');

  // A message over the limit: 1009 naming limits.max_frame_size.
  socket = await openSocket('/socket/98');
  await socket.next();
  socket.send('x'.repeat(70_000));
  closed = await socket.closed;
  assert.equal(closed.code, 1009, JSON.stringify(closed));
  assert.match(closed.reason, /limits\.max_frame_size/, JSON.stringify(closed));
  await stillWorks(canary, 'a message over the limit');

  // A text frame that is not UTF-8: 1007.
  socket = await openSocket('/ws/asset');
  await socket.next();
  socket.send(Buffer.from([0x68, 0x69, 0xff, 0xfe]), { binary: false });
  closed = await socket.closed;
  assert.equal(closed.code, 1007, JSON.stringify(closed));
  assert.ok(closed.reason.length > 0, `a reason for 1007: ${JSON.stringify(closed)}`);
  await stillWorks(canary, 'invalid UTF-8');

  // Paths that match no endpoint: 404.
  for (const path of ['/socket', '/socket/', '/socket/7/8', '/nowhere', '/ws/asset/x', '/ws']) {
    const refused = await refusedHandshake(path);
    assert.equal(refused.status, 404, `${path}: ${JSON.stringify(refused)}`);
  }
  await stillWorks(canary, 'paths matching no endpoint');

  // Path variables that would reshape destinations or the user: 400 naming the variable.
  for (const path of ['/socket/*', '/socket/a,b', '/socket/a%2Fb', '/socket/%2A%2A', '/socket/a%20b', '/socket/a%3Fb', '/socket/%7Bx%7D', `/socket/${'x'.repeat(129)}`]) {
    const refused = await refusedHandshake(path);
    assert.equal(refused.status, 400, `${path}: ${JSON.stringify(refused)}`);
    assert.match(refused.body, /\{id\}/, `${path}: ${JSON.stringify(refused)}`);
  }
  await stillWorks(canary, 'bad path variables');

  // None of it reached the broadcast either: the canary gets exactly what is published.
  const http = await getJson('/v1/chat/http?from=1&to=&content=after%20the%20bad%20input');
  assert.deepEqual(JSON.parse(await canary.next('the broadcast after the bad input')), http);
  assert.deepEqual(canary.pending(), []);
  await canary.close();
});

test('the size limit: 65,024 bytes (limits.max_frame_size less 512) pass, one more closes 1009', { timeout: 60_000 }, async () => {
  const LIMIT = 65_536 - 512;
  const socket = await openSocket('/socket/97');
  await socket.next();
  const atLimit = 'y'.repeat(LIMIT);
  socket.send(atLimit);
  assert.equal(await socket.next('the echo of a message at the limit'), atLimit);
  socket.send('y'.repeat(LIMIT + 1));
  const closed = await socket.closed;
  assert.equal(closed.code, 1009, JSON.stringify(closed));
  assert.match(closed.reason, /limits\.max_frame_size/, JSON.stringify(closed));
});

test('close reasons on a plain endpoint agree with what it accepts', { timeout: 60_000 }, async () => {
  // 1009: the limit the reason states is below the size it says was sent.
  let socket = await openSocket('/ws/asset');
  await socket.next();
  socket.send('z'.repeat(65_536 - 512 + 1));
  let closed = await socket.closed;
  assert.equal(closed.code, 1009);
  const [, size, limit] = closed.reason.match(/(\d+) bytes, over the (\d+) bytes/) ?? [];
  assert.ok(size && limit, `sizes in the reason: ${JSON.stringify(closed)}`);
  assert.ok(Number(size) > Number(limit), `the reason says ${size} bytes is over ${limit}: ${JSON.stringify(closed.reason)}`);
  // 1007: a text-only endpoint closes binary messages with 1003, so the reason may not advise sending them.
  socket = await openSocket('/ws/asset');
  await socket.next();
  socket.send(Buffer.from([0xff]), { binary: false });
  closed = await socket.closed;
  assert.equal(closed.code, 1007);
  assert.doesNotMatch(closed.reason, /binary/, `the 1007 reason: ${JSON.stringify(closed.reason)}`);
});

test('graceful shutdown closes plain sockets with 1001', { timeout: 60_000 }, async () => {
  const own = await startBroker();
  const socket = await openSocket('/socket/5', own.address);
  const asset = await openSocket('/ws/asset', own.address);
  assert.equal(await socket.next(), '-连接已建立-');
  assert.equal(await asset.next(), '连接成功');
  const exited = own.stop();
  for (const s of [socket, asset]) {
    const closed = await s.closed;
    assert.equal(closed.code, 1001, `${s.path}: ${JSON.stringify(closed)}`);
  }
  assert.equal(await withTimeout(exited, 15_000, 'the broker to exit'), 0);
});

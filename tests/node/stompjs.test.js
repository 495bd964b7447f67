// The unmodified @stomp/stompjs client against the real broker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';
import { startBroker } from './broker.js';

let broker;
before(async () => {
  broker = await startBroker();
});
after(async () => {
  assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
});

// Resolves with a connected client; options are passed to stompjs unchanged.
function connect(options = {}) {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new WebSocket(broker.url, Versions.default.protocolVersions()),
      reconnectDelay: 0,
      ...options,
    });
    client.onConnect = (frame) => resolve({ client, connected: frame });
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
    client.onWebSocketError = (event) => reject(new Error(`websocket error: ${event.message ?? event}`));
    client.activate();
  });
}

// Subscribes and waits for the broker's receipt, so publishing right after is safe.
function subscribe(client, destination, onMessage) {
  return new Promise((resolve) => {
    const receipt = `sub-${Math.random().toString(36).slice(2)}`;
    client.watchForReceipt(receipt, () => resolve());
    client.subscribe(destination, onMessage, { receipt });
  });
}

function nextMessages(count) {
  const received = [];
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const onMessage = (message) => {
    received.push(message);
    if (received.length === count) done(received);
  };
  return { onMessage, all };
}

test('connects with STOMP 1.2, subscribes, publishes and receives', async () => {
  const { client: subscriber, connected } = await connect();
  assert.equal(connected.headers.version, '1.2');
  assert.ok(connected.headers.session);
  assert.equal(connected.headers['heart-beat'], '10000,10000');
  const { client: publisher } = await connect();
  const expected = nextMessages(2);
  await subscribe(subscriber, '/topic/game_chat', expected.onMessage);
  publisher.publish({
    destination: '/topic/game_chat',
    body: JSON.stringify({ content: '大家好，欢迎来到游戏聊天室' }),
    headers: { 'content-type': 'application/json', 'x-player': '1' },
  });
  publisher.publish({ destination: '/topic/game_chat', body: 'second' });
  const [first, second] = await expected.all;
  assert.deepEqual(JSON.parse(first.body), { content: '大家好，欢迎来到游戏聊天室' });
  assert.equal(first.headers['content-type'], 'application/json');
  assert.equal(first.headers['x-player'], '1');
  assert.equal(first.headers.destination, '/topic/game_chat');
  assert.ok(first.headers['message-id']);
  assert.equal(second.body, 'second');
  await subscriber.deactivate();
  await publisher.deactivate();
});

test('a frame split with splitLargeFrames over 1024-byte WebSocket messages arrives whole', async () => {
  const { client: subscriber } = await connect();
  const sentSizes = [];
  const { client: publisher } = await connect({
    splitLargeFrames: true,
    maxWebSocketChunkSize: 1024,
    webSocketFactory: () => {
      const socket = new WebSocket(broker.url, Versions.default.protocolVersions());
      const send = socket.send.bind(socket);
      socket.send = (data, ...rest) => {
        sentSizes.push(data.length);
        return send(data, ...rest);
      };
      return socket;
    },
  });
  const expected = nextMessages(1);
  await subscribe(subscriber, '/topic/large', expected.onMessage);
  const body = '分片'.repeat(2000) + 'x'.repeat(5000);
  sentSizes.length = 0;
  publisher.publish({ destination: '/topic/large', body });
  const [message] = await expected.all;
  assert.ok(sentSizes.length >= 9, `the SEND went out as ${sentSizes.length} WebSocket messages`);
  assert.ok(sentSizes.every((size) => size <= 1024));
  assert.equal(message.body.length, body.length);
  assert.equal(message.body, body);
  await subscriber.deactivate();
  await publisher.deactivate();
});

test('a receipt for SEND and a point-to-point destination reaching one user only', async () => {
  const { client: user1 } = await connect();
  const { client: user2 } = await connect();
  const toUser2 = nextMessages(1);
  const toUser1 = [];
  await subscribe(user1, '/chat/single/1', (m) => toUser1.push(m));
  await subscribe(user2, '/chat/single/2', toUser2.onMessage);
  const receipt = new Promise((resolve) => user1.watchForReceipt('sent-1', resolve));
  user1.publish({ destination: '/chat/single/2', body: '1 sent: 你好', headers: { receipt: 'sent-1' } });
  await receipt;
  const [message] = await toUser2.all;
  assert.equal(message.body, '1 sent: 你好');
  assert.equal(toUser1.length, 0);
  await user1.deactivate();
  await user2.deactivate();
});

test('a protocol error reaches onStompError with the reason', async () => {
  const { client } = await connect();
  const error = new Promise((resolve) => {
    client.onStompError = (frame) => resolve(frame);
  });
  client.publish({ destination: '/queue/unknown', body: 'x' });
  const frame = await error;
  assert.match(frame.headers.message, /has no configured prefix/);
  await client.deactivate();
});

test('a 1 MiB message gets an ERROR naming limits.max_frame_size and close code 1009', async () => {
  const { client } = await connect();
  const error = new Promise((resolve) => {
    client.onStompError = (frame) => resolve(frame);
  });
  const closed = new Promise((resolve) => {
    client.onWebSocketClose = (event) => resolve(event);
  });
  client.publish({ destination: '/topic/large', body: 'x'.repeat(1024 * 1024) });
  const [frame, close] = await Promise.all([error, closed]);
  assert.match(frame.headers.message, /over the 65536 bytes of limits\.max_frame_size/);
  assert.equal(close.code, 1009);
  assert.equal(close.reason, 'message too large');
  await client.deactivate();
});

test('a client asking for 1 s heart-beats gets them', async () => {
  const pongs = [];
  const { client, connected } = await connect({
    heartbeatIncoming: 1000,
    heartbeatOutgoing: 1000,
    debug: (line) => {
      if (line === '<<< PONG') pongs.push(Date.now());
    },
  });
  assert.equal(connected.headers['heart-beat'], '1000,1000');
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 3500));
  // stompjs closes a connection silent for twice the interval; with nothing
  // else to send, the server's heart-beats alone kept this one open.
  assert.ok(client.connected, 'still connected');
  const during = pongs.filter((at) => at >= started);
  assert.ok(during.length >= 2, `heart-beats from the server in 3.5 s: ${during.length}`);
  await client.deactivate();
});

// The unmodified @stomp/stompjs client over plain TCP ([tcp]) through
// @stomp/tcp-wrapper, which hands stompjs a Node socket in place of a WebSocket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from '@stomp/stompjs';
import { TCPWrapper } from '@stomp/tcp-wrapper';
import { startBroker } from './broker.js';

let broker;
before(async () => {
  const config = path.join(mkdtempSync(path.join(tmpdir(), 'stomphub-tcp-')), 'broker.toml');
  writeFileSync(config, '[demo]\nprice_feed_ms = 0\n[tcp]\nbind = "127.0.0.1:0"\n');
  broker = await startBroker({ args: ['--config', config], tcp: true });
});
after(async () => {
  assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
});

// Resolves with a client connected over TCP; options are passed to stompjs unchanged.
function connect(options = {}) {
  const [host, port] = broker.tcpAddress.split(':');
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new TCPWrapper(host, Number(port)),
      reconnectDelay: 0,
      ...options,
    });
    client.onConnect = (frame) => resolve({ client, connected: frame });
    client.onStompError = (frame) => reject(new Error(frame.headers.message));
    client.onWebSocketError = (event) => reject(new Error(`socket error: ${event.message ?? event}`));
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

// A broker that loses messages fails the test instead of hanging it.
const LIMIT = { timeout: 30_000 };

test('connects over TCP, subscribes with a receipt and receives 1,000 messages in order', LIMIT, async () => {
  const { client: subscriber, connected } = await connect();
  assert.equal(connected.headers.version, '1.2');
  assert.ok(connected.headers.session);
  const { client: publisher } = await connect();
  const received = [];
  const all = new Promise((resolve) => {
    subscribe(subscriber, '/topic/tcp-node', (message) => {
      received.push(message);
      if (received.length === 1000) resolve();
    }).then(() => {
      for (let n = 0; n < 1000; n += 1) {
        publisher.publish({ destination: '/topic/tcp-node', body: `${n} 你好` });
      }
    });
  });
  await all;
  assert.deepEqual(
    received.map((message) => message.body),
    Array.from({ length: 1000 }, (_, n) => `${n} 你好`),
  );
  assert.equal(received[0].headers.destination, '/topic/tcp-node');
  await subscriber.deactivate();
  await publisher.deactivate();
});

test('heart-beats flow both ways over TCP', LIMIT, async () => {
  let incoming = 0;
  const { client, connected } = await connect({
    heartbeatIncoming: 1000,
    heartbeatOutgoing: 1000,
    debug: (line) => {
      if (line.startsWith('<<< PONG')) incoming += 1;
    },
  });
  assert.equal(connected.headers['heart-beat'], '1000,1000');
  await new Promise((resolve) => setTimeout(resolve, 3500));
  assert.ok(incoming >= 2, `only ${incoming} heart-beats from the broker`);
  assert.ok(client.connected, 'the broker kept the session: the client beat too');
  await client.deactivate();
});

// The unmodified @stomp/stompjs client against a broker whose decisions are
// made by an HTTP application ([proxy], examples/proxy-backend): the seeds'
// chat answered by the backend, a login it refuses, and a subscription it greets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';
import { startBroker } from './broker.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let backend;
let broker;
let dir;

// The demo backend on a free port; resolves with its base URL.
function startBackend() {
  const child = spawn('python3', [path.join(root, 'examples/proxy-backend/app.py'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the backend did not start within 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`the backend exited early with ${code}`)));
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve({ child, url: line.replace('listening on ', '').trim() });
    });
  });
}

before(async () => {
  backend = await startBackend();
  dir = mkdtempSync(path.join(tmpdir(), 'stomphub-proxy-'));
  const config = path.join(dir, 'broker.toml');
  writeFileSync(
    config,
    `[proxy]
connect = "${backend.url}/stomp/connect"
subscribe = "${backend.url}/stomp/subscribe"
publish = "${backend.url}/stomp/publish"

[[route]]
from = "/v1/chat"
proxy = "${backend.url}/stomp/app"
`,
  );
  broker = await startBroker({ args: ['--config', config] });
});

after(async () => {
  assert.equal(await broker.stop(), 0, 'stomphub exits 0 on SIGTERM');
  backend.child.kill();
  rmSync(dir, { recursive: true, force: true });
});

// Resolves with a connected client, or rejects with the ERROR frame's headers.
function connect(connectHeaders = {}) {
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new WebSocket(broker.url, Versions.default.protocolVersions()),
      reconnectDelay: 0,
      connectHeaders,
    });
    client.onConnect = (frame) => resolve({ client, connected: frame });
    client.onStompError = (frame) => {
      client.deactivate();
      reject(Object.assign(new Error(frame.headers.message), { headers: frame.headers }));
    };
    client.activate();
  });
}

function subscribe(client, destination, onMessage) {
  return new Promise((resolve) => {
    const receipt = `sub-${Math.random().toString(36).slice(2)}`;
    client.watchForReceipt(receipt, () => resolve());
    client.subscribe(destination, onMessage, { receipt });
  });
}

test('the seeds\' chat is answered by the backend, with the user it named', async () => {
  const { client: watcher } = await connect({ login: 'bob', passcode: 'secret' });
  const { client: alice, connected } = await connect({ login: 'alice', passcode: 'secret' });
  assert.equal(connected.headers['user-name'], 'alice');
  let chatArrived;
  let ackArrived;
  const chat = new Promise((resolve) => (chatArrived = resolve));
  const ack = new Promise((resolve) => (ackArrived = resolve));
  await subscribe(watcher, '/topic/game_chat', chatArrived);
  await subscribe(alice, '/user/queue/ack', ackArrived);
  alice.publish({ destination: '/app/v1/chat', body: JSON.stringify({ name: 'Alice', content: 'hi' }) });
  const message = JSON.parse((await chat).body);
  assert.deepEqual([message.name, message.content, message.user], ['Alice', 'hi', 'alice']);
  assert.equal((await ack).body, 'ok');
  await watcher.deactivate();
  await alice.deactivate();
});

test('a login the backend refuses gets its message and code', async () => {
  await assert.rejects(connect({ login: 'banned', passcode: 'secret' }), (error) => {
    assert.equal(error.message, 'user banned is not welcome');
    assert.equal(error.headers.code, 'banned');
    return true;
  });
});

test('a subscription the backend greets gets its initial message first', async () => {
  const { client } = await connect({ login: 'carol', passcode: 'secret' });
  const welcome = new Promise((resolve) => client.subscribe('/topic/welcome', resolve));
  assert.equal((await welcome).body, 'welcome carol');
  await client.deactivate();
});

// The unmodified @stomp/stompjs client against three stomphub nodes behind
// nginx (round-robin, the documented config) sharing one broker through Redis.
// A node is killed; stompjs reconnects by itself through nginx, resubscribes in
// onConnect as applications do, and receives again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, Versions } from '@stomp/stompjs';
import WebSocket from 'ws';
import { startCluster, missingTools } from './cluster.js';

const missing = missingTools();
if (missing.length > 0 && process.env.STOMPHUB_REQUIRE_CLUSTER_TOOLS) {
  throw new Error(`missing ${missing.join(', ')}; scripts/test.sh installs them`);
}
const TOPIC = '/topic/cluster';
let cluster;

before(async () => {
  if (missing.length === 0) cluster = await startCluster();
});
after(async () => {
  await cluster?.stop();
});

// A stompjs client that subscribes on every (re)connect and records what it gets.
function subscriber(url) {
  const state = { bodies: [], connects: 0, client: null };
  state.client = new Client({
    webSocketFactory: () => new WebSocket(url, Versions.default.protocolVersions()),
    reconnectDelay: 200,
    heartbeatIncoming: 0,
    heartbeatOutgoing: 0,
    onConnect: () => {
      state.connects += 1;
      state.client.subscribe(TOPIC, (message) => state.bodies.push(message.body));
    },
  });
  state.client.activate();
  return state;
}

async function eventually(what, check, limit = 15_000) {
  const deadline = Date.now() + limit;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not within ${limit} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test('stompjs clients spread by nginx survive a node dying', { skip: missing.length > 0 && `missing ${missing}` }, async () => {
  const subscribers = Array.from({ length: 6 }, () => subscriber(cluster.roundRobinUrl));
  await eventually('all six connected', () => subscribers.every((s) => s.connects === 1));
  for (const node of cluster.nodes) {
    const stats = await (await fetch(`http://${node.address}/api/stats`)).json();
    assert.equal(stats.sessions, 2, `round-robin gives ${node.id} two clients`);
  }
  const publisher = new Client({
    webSocketFactory: () => new WebSocket(cluster.nodeUrl(cluster.nodes[0]), Versions.default.protocolVersions()),
    reconnectDelay: 0,
  });
  await new Promise((resolve) => {
    publisher.onConnect = resolve;
    publisher.activate();
  });
  let round = 0;
  const warmUp = () =>
    eventually('every subscriber hears the publisher', async () => {
      publisher.publish({ destination: TOPIC, body: `warm-${round++}` });
      await new Promise((resolve) => setTimeout(resolve, 50));
      return subscribers.every((s) => s.bodies.some((body) => body.startsWith('warm')));
    });
  const numbered = (prefix, count) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const real = (s) => s.bodies.filter((body) => !body.startsWith('warm'));

  await warmUp();
  for (const body of numbered('m', 100)) publisher.publish({ destination: TOPIC, body });
  await eventually('100 messages everywhere', () => subscribers.every((s) => real(s).length >= 100));
  for (const s of subscribers) assert.deepEqual(real(s), numbered('m', 100));

  await cluster.kill(cluster.nodes[2]);
  await eventually('node 3 clients reconnected', () => subscribers.filter((s) => s.connects === 2).length === 2);
  assert.equal(subscribers.filter((s) => s.connects === 1).length, 4, 'the others kept their connection');
  for (const s of subscribers) s.bodies = [];
  await warmUp();
  for (const body of numbered('k', 100)) publisher.publish({ destination: TOPIC, body });
  await eventually('100 more messages everywhere', () => subscribers.every((s) => real(s).length >= 100));
  for (const s of subscribers) assert.deepEqual(real(s), numbered('k', 100));

  await Promise.all([publisher, ...subscribers.map((s) => s.client)].map((client) => client.deactivate()));
});

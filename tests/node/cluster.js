// A real cluster for the Node tests: redis-server, three stomphub processes and
// nginx running docs/nginx/stomphub-cluster.conf with loopback ports of its own.
import { spawn, spawnSync } from 'node:child_process';
import { startBroker } from './broker.js';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function missingTools() {
  return ['redis-server', 'nginx'].filter(
    (tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0,
  );
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitForPort(port, what) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.end();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function startNode(dir, id, redisPort) {
  const config = path.join(dir, `${id}.toml`);
  fs.writeFileSync(
    config,
    `[server]\nweb_root = "${path.join(dir, 'none')}"\nshutdown_timeout_ms = 1000\n` +
      `[demo]\nenabled = false\n` +
      `[cluster]\nbackend = "redis"\nurl = "redis://127.0.0.1:${redisPort}/"\nnode_id = "${id}"\n` +
      `registry_refresh_ms = 200\nregistry_ttl_ms = 1000\nreconnect_min_ms = 50\nreconnect_max_ms = 400\n`,
  );
  const node = await startBroker({ args: ['--config', config] });
  return { id, ...node };
}

async function waitUntilReady(address) {
  const deadline = Date.now() + 10_000;
  while ((await fetch(`http://${address}/ready`).catch(() => ({ status: 0 }))).status !== 200) {
    if (Date.now() > deadline) throw new Error(`${address} not ready`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startCluster() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stomphub-node-cluster-'));
  const redisPort = await freePort();
  const redis = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  await waitForPort(redisPort, 'redis-server');
  const nodes = [];
  for (const id of ['n1', 'n2', 'n3']) nodes.push(await startNode(dir, id, redisPort));
  for (const node of nodes) await waitUntilReady(node.address);

  let site = fs.readFileSync(path.join(root, 'docs/nginx/stomphub-cluster.conf'), 'utf8');
  nodes.forEach((node, index) => {
    site = site.replaceAll(`127.0.0.1:${3100 + index}`, node.address);
  });
  const [sticky, roundRobin] = [await freePort(), await freePort()];
  site = site.replace('listen 8080;', `listen 127.0.0.1:${sticky};`).replace('listen 8081;', `listen 127.0.0.1:${roundRobin};`);
  fs.writeFileSync(path.join(dir, 'site.conf'), site);
  const temp = path.join(dir, 'temp');
  fs.mkdirSync(temp);
  fs.writeFileSync(
    path.join(dir, 'nginx.conf'),
    `daemon off;\nworker_processes 1;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\n` +
      `events { worker_connections 1024; }\nhttp {\n access_log off;\n client_body_temp_path ${temp}/body;\n` +
      ` proxy_temp_path ${temp}/proxy;\n fastcgi_temp_path ${temp}/fastcgi;\n uwsgi_temp_path ${temp}/uwsgi;\n` +
      ` scgi_temp_path ${temp}/scgi;\n include ${dir}/site.conf;\n}\n`,
  );
  const nginx = spawn('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf')], {
    stdio: 'ignore',
  });
  await waitForPort(roundRobin, 'nginx');

  const exited = (child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
  return {
    nodes,
    roundRobinUrl: `ws://127.0.0.1:${roundRobin}/endpoint-websocket`,
    nodeUrl: (node) => `ws://${node.address}/endpoint-websocket`,
    async kill(node) {
      node.child.kill('SIGKILL');
      await exited(node.child);
    },
    async stop() {
      nginx.kill('SIGTERM'); // the master stops its workers
      for (const node of nodes) node.child.kill('SIGKILL');
      redis.kill('SIGKILL');
      await Promise.all([nginx, redis, ...nodes.map((node) => node.child)].map(exited));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

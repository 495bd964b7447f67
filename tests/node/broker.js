// Starts the real stomphub binary on an ephemeral loopback port for a test.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// `args` follow `serve --bind 127.0.0.1:0` (for example `--config FILE`).
// With `tcp`, the config has a [tcp] listener: also waits for its address.
export async function startBroker({ args = [], tcp = false } = {}) {
  const binary = process.env.STOMPHUB_BIN ?? path.join(root, 'target/debug/stomphub');
  const child = spawn(binary, ['serve', '--bind', '127.0.0.1:0', ...args], {
    cwd: root,
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines = createInterface({ input: child.stderr });
  let tcpAddress;
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('stomphub did not start within 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`stomphub exited early with ${code}`)));
    let http;
    lines.on('line', (line) => {
      http ??= line.match(/listening on http:\/\/(\S+)/)?.[1];
      tcpAddress ??= line.match(/listening on stomp(?:\+ssl)?:\/\/(\S+)/)?.[1];
      if (http && (tcpAddress || !tcp)) {
        clearTimeout(timer);
        resolve(http);
      }
    });
  });
  return {
    address,
    tcpAddress,
    child,
    url: `ws://${address}/endpoint-websocket`,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// Starts the real stomphub binary on an ephemeral loopback port for a test.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// `args` follow `serve --bind 127.0.0.1:0` (for example `--config FILE`).
export async function startBroker({ args = [] } = {}) {
  const binary = process.env.STOMPHUB_BIN ?? path.join(root, 'target/debug/stomphub');
  const child = spawn(binary, ['serve', '--bind', '127.0.0.1:0', ...args], {
    cwd: root,
    env: { ...process.env, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines = createInterface({ input: child.stderr });
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('stomphub did not start within 10 s')), 10_000);
    child.once('exit', (code) => reject(new Error(`stomphub exited early with ${code}`)));
    lines.on('line', (line) => {
      const found = line.match(/listening on http:\/\/(\S+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
  });
  return {
    address,
    child,
    url: `ws://${address}/endpoint-websocket`,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

// Launches Debian's Chromium through playwright-core, with the flags this
// machine needs (no sandbox as root, no background traffic to the closed network),
// next to a freshly started broker.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startBroker } from './broker.js';

/** Where the browser tests save their screenshots. */
export const output = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test-output');

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A broker (started with `brokerOptions`, see broker.js), a browser and the broker's
 * HTTP base URL; `close()` resolves to the broker's exit code. */
export async function openBrowserSession(brokerOptions = {}) {
  const broker = await startBroker(brokerOptions);
  const base = broker.url.replace('ws://', 'http://').replace('/endpoint-websocket', '');
  const browser = await launchChromium();
  mkdirSync(output, { recursive: true });
  return {
    broker,
    browser,
    base,
    async close() {
      await browser.close();
      return broker.stop();
    },
  };
}

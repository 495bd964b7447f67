// SockJS without a client library: raw HTTP requests, streaming receivers read
// line by line, STOMP frames built and parsed by hand, and temporary config files.
// Used by sockjs.test.js for the protocol's bad inputs.
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const configDirs = [];
process.on('exit', () => {
  for (const dir of configDirs) rmSync(dir, { recursive: true, force: true });
});

/** Writes `text` (TOML) to a fresh temporary file (removed at exit) and returns its path. */
export function writeConfig(text) {
  const dir = mkdtempSync(path.join(tmpdir(), 'stomphub-sockjs-'));
  configDirs.push(dir);
  const file = path.join(dir, 'broker.toml');
  writeFileSync(file, text);
  return file;
}

/** Rejects after `ms` with a message naming what was awaited. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` (sync or async) every 50 ms until it returns a truthy value. */
export async function eventually(check, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * One HTTP request on its own connection: resolves with status, headers and the
 * whole body as text. A server that answers before reading all of a large body
 * (413) may reset the upload; the response still counts if it arrived.
 */
export function request(method, url, { headers = {}, body, timeout = 10_000 } = {}) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers, agent: false });
      req.on('response', (res) => {
        res.setEncoding('utf8');
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
        res.on('error', reject);
      });
      req.on('error', (error) => {
        if (!req.res) reject(error);
      });
      if (body !== undefined) req.write(body);
      req.end();
    }),
    timeout,
    `${method} ${url}`,
  );
}

/**
 * A long-lived receiving request (xhr_streaming, eventsource, htmlfile, or a
 * single xhr poll): every line of the body as it arrives, `waitFor(predicate)`
 * for a line, `ended` when the server ends the response.
 */
export function openStream(url, { method = 'POST', headers = {} } = {}) {
  const lines = [];
  const waiters = [];
  let buffer = '';
  let resolveEnded;
  const ended = new Promise((resolve) => {
    resolveEnded = resolve;
  });
  let resolveResponse;
  let rejectResponse;
  const response = new Promise((resolve, reject) => {
    resolveResponse = resolve;
    rejectResponse = reject;
  });
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i -= 1) {
      const found = lines.find(waiters[i].predicate);
      if (found !== undefined) {
        waiters[i].resolve(found);
        waiters.splice(i, 1);
      }
    }
  };
  const req = http.request(url, { method, headers, agent: false });
  req.on('response', (res) => {
    resolveResponse({ status: res.statusCode, headers: res.headers });
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buffer += chunk;
      let index;
      while ((index = buffer.indexOf('\n')) !== -1) {
        lines.push(buffer.slice(0, index).replace(/\r$/, ''));
        buffer = buffer.slice(index + 1);
      }
      check();
    });
    res.on('end', () => resolveEnded({ rest: buffer }));
    res.on('error', () => resolveEnded({ rest: buffer, aborted: true }));
    res.on('close', () => resolveEnded({ rest: buffer, aborted: true }));
  });
  req.on('error', (error) => {
    rejectResponse(error);
    resolveEnded({ rest: buffer, error });
  });
  req.end();
  return {
    lines,
    response: withTimeout(response, 10_000, `the response to ${method} ${url}`),
    ended,
    /** Resolves with the first line (past or future) matching `predicate`. */
    waitFor(predicate, ms, what) {
      return withTimeout(
        new Promise((resolve) => {
          waiters.push({ predicate, resolve });
          check();
        }),
        ms,
        what ?? `a line matching ${predicate} from ${url} (got ${JSON.stringify(lines.map(short))})`,
      );
    },
    /** STOMP frames received so far, from every `a[...]` and `m"..."` line. */
    stompFrames() {
      return parseStomp(stompText(lines));
    },
    close() {
      req.destroy();
    },
  };
}

function short(line) {
  return line.length > 80 ? `${line.slice(0, 80)}…(${line.length})` : line;
}

/** The STOMP stream carried by SockJS frames (`a[...]`, `m"..."`), in order. */
export function stompText(lines) {
  let text = '';
  for (const line of lines) {
    if (line.startsWith('a')) text += JSON.parse(line.slice(1)).join('');
    else if (line.startsWith('m')) text += JSON.parse(line.slice(1));
  }
  return text;
}

/** A STOMP frame as text (the body is UTF-8; no content-length unless given). */
export function stompFrame(command, headers = {}, body = '') {
  const lines = [command];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}:${value}`);
  return `${lines.join('\n')}\n\n${body}\0`;
}

/** Complete frames from STOMP text: {command, headers, body}; heart-beat EOLs are skipped. */
export function parseStomp(text) {
  const frames = [];
  const pieces = text.split('\0');
  pieces.pop(); // not terminated by NUL (yet): heart-beats or an incomplete frame
  for (const raw of pieces) {
    const frame = raw.replace(/^[\r\n]+/, '');
    if (!frame) continue;
    const split = frame.indexOf('\n\n');
    const head = split === -1 ? frame : frame.slice(0, split);
    const body = split === -1 ? '' : frame.slice(split + 2);
    const [command, ...headerLines] = head.split('\n');
    const headers = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon);
      if (!(name in headers)) headers[name] = line.slice(colon + 1);
    }
    frames.push({ command: command.replace(/\r$/, ''), headers, body });
  }
  return frames;
}

/** A `c[code,"reason"]` line as {code, reason}, or null. */
export function closeFrame(line) {
  if (!line.startsWith('c[')) return null;
  const [code, reason] = JSON.parse(line.slice(1));
  return { code, reason };
}

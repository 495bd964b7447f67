// Shared by the demo pages: a @stomp/stompjs client for this server's endpoint.
import { Client } from '/node_modules/@stomp/stompjs/esm6/index.js';

export const ENDPOINT = '/endpoint-websocket';

export function brokerUrl() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${ENDPOINT}`;
}

/**
 * Creates and activates a client. `onConnect` runs after every (re)connect,
 * so subscriptions made there survive reconnects.
 */
export function connect({ onConnect, onStatus, connectHeaders = {} }) {
  const client = new Client({
    brokerURL: brokerUrl(),
    connectHeaders,
    reconnectDelay: 2000,
    heartbeatIncoming: 10000,
    heartbeatOutgoing: 10000,
  });
  client.onConnect = (frame) => {
    onStatus?.(`connected (session ${frame.headers.session})`, true);
    onConnect(client, frame);
  };
  client.onWebSocketClose = () => onStatus?.('disconnected, retrying…', false);
  client.onStompError = (frame) => onStatus?.(`error: ${frame.headers.message}`, false);
  client.activate();
  return client;
}

/** The `content` of an OutMessage body, or the raw body. */
export function contentOf(body) {
  try {
    const parsed = JSON.parse(body);
    return typeof parsed === 'object' && parsed !== null && 'content' in parsed ? parsed.content : body;
  } catch {
    return body;
  }
}

export function setStatus(element, text, ok) {
  element.textContent = text;
  element.classList.toggle('ok', ok);
}

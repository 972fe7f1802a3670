import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { WsFrame } from '../types';

export type WsState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

type Listener = (topic: string, data: unknown) => void;
type OpenListener = () => void;

/** Topic prefixes the dashboard needs; the server filters the bus stream by these. */
export const TOPICS = ['price.', 'event.', 'status.'] as const;

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10_000;

/** The page's own host, so the same build works behind the API (:8000), the dev proxy (:5173) and TLS. */
export function wsUrl(loc: Location = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}

/**
 * The one WebSocket of the page. Other stores register listeners instead of opening their own
 * sockets, so the server conflates and filters once per tab.
 */
export const useConnectionStore = defineStore('connection', () => {
  const state = ref<WsState>('idle');
  const attempts = ref(0);
  const lastError = ref<string | null>(null);
  const lastMessageAt = ref<number | null>(null);
  const nextRetryAt = ref<number | null>(null);
  const messages = ref(0);

  // Plain (non-reactive) holders: the socket and listener sets never need to render.
  let socket: WebSocket | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let stopped = true;
  const listeners = new Set<Listener>();
  const openListeners = new Set<OpenListener>();

  function onMessage(fn: Listener): () => void {
    listeners.add(fn);
    return () => listeners.delete(fn);
  }

  /** Called after every (re)subscribe: stores refetch snapshots to cover what was missed while down. */
  function onSubscribed(fn: OpenListener): () => void {
    openListeners.add(fn);
    return () => openListeners.delete(fn);
  }

  function connect(): void {
    stopped = false;
    if (socket) return;
    state.value = attempts.value === 0 ? 'connecting' : 'reconnecting';
    nextRetryAt.value = null;
    let ws: WebSocket;
    try {
      ws = new WebSocket(wsUrl());
    } catch (err) {
      lastError.value = (err as Error).message;
      scheduleRetry();
      return;
    }
    socket = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ op: 'subscribe', topics: TOPICS }));
    };
    ws.onmessage = (ev: MessageEvent) => {
      if (typeof ev.data !== 'string') return;
      let frame: WsFrame;
      try {
        frame = JSON.parse(ev.data) as WsFrame;
      } catch {
        return; // A frame we cannot parse is not worth tearing the socket down for.
      }
      lastMessageAt.value = Date.now();
      if ('op' in frame) {
        if (frame.op === 'subscribed') {
          state.value = 'open';
          attempts.value = 0; // Only a working subscription resets the backoff.
          lastError.value = null;
          for (const fn of openListeners) fn();
        } else if (frame.op === 'error') {
          lastError.value = `server: ${frame.error}`;
        }
        return;
      }
      if (typeof frame.topic !== 'string') return;
      messages.value++;
      for (const fn of listeners) {
        try {
          fn(frame.topic, frame.data);
        } catch (err) {
          // One bad message must not stop the others; surface it once in the devtools console.
          console.warn('dashboard: listener failed on', frame.topic, err);
        }
      }
    };
    ws.onerror = () => {
      lastError.value = `WebSocket error on ${wsUrl()} — is the API running?`;
    };
    ws.onclose = (ev: CloseEvent) => {
      if (socket === ws) socket = null;
      if (ev.code !== 1000 && ev.code !== 1005 && !lastError.value) lastError.value = `closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ''})`;
      if (stopped) {
        state.value = 'closed';
        return;
      }
      scheduleRetry();
    };
  }

  function scheduleRetry(): void {
    if (stopped || retryTimer) return;
    attempts.value++;
    // Exponential backoff with jitter so a restarted API is not hit by every tab at once.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (attempts.value - 1));
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    state.value = 'reconnecting';
    nextRetryAt.value = Date.now() + delay;
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect();
    }, delay);
  }

  function disconnect(): void {
    stopped = true;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    nextRetryAt.value = null;
    socket?.close(1000, 'page closed');
    socket = null;
    state.value = 'closed';
  }

  return { state, attempts, lastError, lastMessageAt, nextRetryAt, messages, connect, disconnect, onMessage, onSubscribed };
});

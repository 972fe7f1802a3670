import { useConnectionStore } from './stores/connection';
import { useEventsStore } from './stores/events';
import { useHealthStore } from './stores/health';
import { useMarketsStore } from './stores/markets';
import { usePositionsStore } from './stores/positions';
import type { EventMessage, PriceMessage, StatusMessage } from './types';

const EVENT_KINDS = new Set(['order', 'fill', 'position', 'signal']);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/**
 * Wires the WebSocket to the stores. The API validated every bus message against its schema already,
 * so the checks here only guard the fields each store dispatches on.
 */
export function startLive(): () => void {
  const conn = useConnectionStore();
  const markets = useMarketsStore();
  const events = useEventsStore();
  const positions = usePositionsStore();
  const health = useHealthStore();

  const offMsg = conn.onMessage((topic, data) => {
    if (!isObj(data)) return;
    if (topic.startsWith('price.') && data.type === 'price' && typeof data.token_id === 'string') {
      markets.applyPrice(data as unknown as PriceMessage);
    } else if (topic.startsWith('event.') && data.type === 'event' && EVENT_KINDS.has(data.kind as string)) {
      const ev = data as unknown as EventMessage;
      events.add(topic, ev);
      if (ev.kind === 'position') positions.applyEvent(ev);
    } else if (topic.startsWith('status.') && data.type === 'status' && typeof data.service === 'string') {
      health.applyStatus(data as unknown as StatusMessage);
    }
  });

  // Every (re)subscription may follow a gap: refetch the snapshots the stream only patches.
  let first = true;
  const offOpen = conn.onSubscribed(() => {
    if (first) {
      first = false;
      return;
    }
    void markets.load();
    void positions.load();
    void health.poll();
  });

  void markets.load();
  void positions.load();
  health.start();
  conn.connect();

  return () => {
    offMsg();
    offOpen();
    health.stop();
    conn.disconnect();
  };
}

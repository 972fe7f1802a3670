import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { EventMessage } from '../types';

export const MAX_EVENTS = 100;

export interface EventRow {
  key: string;
  topic: string;
  ev: EventMessage;
}

/** The last order / fill / position / signal events from the executor, newest first. */
export const useEventsStore = defineStore('events', () => {
  const events = ref<EventRow[]>([]);
  const total = ref(0);
  let n = 0;

  function add(topic: string, ev: EventMessage): void {
    // The API replays recent events to every new subscription (also after a reconnect): skip what we have.
    if (events.value.some((r) => r.ev.src === ev.src && r.ev.seq === ev.seq && r.ev.ts === ev.ts)) return;
    total.value++;
    // src+seq identifies a bus message; the counter keeps keys unique if a publisher restarts at seq 0.
    const row: EventRow = { key: `${ev.src}:${ev.seq}:${n++}`, topic, ev };
    events.value = [row, ...events.value.slice(0, MAX_EVENTS - 1)];
  }

  function clear(): void {
    events.value = [];
  }

  return { events, total, add, clear };
});

import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import { ApiError, errorText, getJson } from '../api';
import type { HealthResponse, OverallHealth, ServiceHealth, StatusMessage } from '../types';

export const HEALTH_POLL_MS = 5_000;

/**
 * `unreachable` (no answer at all) and `error` (the API answered /api/health with an error) are ours:
 * both differ from the API reporting the stack `down`, and each needs a different fix.
 */
export type HealthStatus = OverallHealth | 'unknown' | 'unreachable' | 'error';

export const useHealthStore = defineStore('health', () => {
  const status = ref<HealthStatus>('unknown');
  const services = ref<Record<string, ServiceHealth>>({});
  const error = ref<string | null>(null);
  const checkedAt = ref<number | null>(null);
  let timer: ReturnType<typeof setInterval> | null = null;

  const serviceList = computed(() =>
    Object.entries(services.value)
      .map(([name, s]) => ({ name, ...s }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  );

  async function poll(): Promise<void> {
    try {
      const res = await getJson<HealthResponse>('/api/health');
      status.value = res.status;
      services.value = res.services;
      error.value = null;
    } catch (err) {
      status.value = err instanceof ApiError && err.status > 0 ? 'error' : 'unreachable';
      error.value = errorText(err);
    }
    checkedAt.value = Date.now();
  }

  /** Status heartbeats arrive between polls; they refresh one service's chip immediately. */
  function applyStatus(m: StatusMessage): void {
    const prev = services.value[m.service];
    services.value = {
      ...services.value,
      [m.service]: {
        ...prev,
        state: m.state,
        since: m.since,
        last_seen: m.ts,
        pid: m.pid,
        metrics: m.metrics,
        ...(m.message !== undefined ? { message: m.message } : {}),
      },
    };
  }

  function start(): void {
    if (timer) return;
    void poll();
    timer = setInterval(() => void poll(), HEALTH_POLL_MS);
  }

  function stop(): void {
    if (timer) clearInterval(timer);
    timer = null;
  }

  return { status, services, serviceList, error, checkedAt, poll, applyStatus, start, stop };
});

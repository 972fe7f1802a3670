import { defineStore } from 'pinia';
import { ref } from 'vue';
import { errorText, getJson } from '../api';
import type { PositionEvent, Position, PositionsResponse } from '../types';

const REFRESH_DEBOUNCE_MS = 300;

export const usePositionsStore = defineStore('positions', () => {
  const positions = ref<Position[]>([]);
  const loaded = ref(false);
  const error = ref<string | null>(null);
  let timer: ReturnType<typeof setTimeout> | null = null;

  async function load(): Promise<void> {
    try {
      const res = await getJson<PositionsResponse>('/api/positions');
      positions.value = res.positions;
      error.value = null;
      loaded.value = true;
    } catch (err) {
      error.value = errorText(err);
    }
  }

  /** A position event carries the whole row: show it at once, then refetch (debounced) as the source of truth. */
  function applyEvent(ev: PositionEvent): void {
    const row: Position = {
      strategy: ev.strategy,
      token_id: ev.token_id,
      market: ev.market,
      size: ev.size,
      avg_price: ev.avg_price,
      cost: ev.cost,
      realized_pnl: ev.realized_pnl,
      updated_at: ev.ts,
    };
    const i = positions.value.findIndex((p) => p.strategy === ev.strategy && p.token_id === ev.token_id);
    if (i >= 0) positions.value.splice(i, 1, row);
    else positions.value.push(row);
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void load();
    }, REFRESH_DEBOUNCE_MS);
  }

  return { positions, loaded, error, load, applyEvent };
});

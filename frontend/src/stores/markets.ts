import { defineStore } from 'pinia';
import { computed, ref, shallowRef, triggerRef } from 'vue';
import { errorText, getJson } from '../api';
import type { Market, MarketsResponse, PriceMessage } from '../types';

export interface Quote {
  bid: number | null;
  ask: number | null;
  mid: number | null;
  bid_size: number;
  ask_size: number;
  ts: number;
}

export interface MarketRow {
  token_id: string;
  condition_id: string;
  question: string;
  outcome: string;
  outcome_index: number;
  /** First outcome of its market: the table prints the question once per market. */
  first: boolean;
  span: number;
  closed: boolean;
}

/** A price for a token we do not know means the scanner added a market: refetch, but not in a storm. */
const UNKNOWN_TOKEN_REFETCH_MS = 15_000;

export const useMarketsStore = defineStore('markets', () => {
  const markets = ref<Market[]>([]);
  const loaded = ref(false);
  const loading = ref(false);
  const error = ref<string | null>(null);
  // Quotes change many times a second: one shallow Map, triggered once per flush, keeps Vue's work small.
  const quotes = shallowRef(new Map<string, Quote>());
  const pending = new Map<string, Quote>();
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  let lastUnknownRefetch = 0;

  const rows = computed<MarketRow[]>(() => {
    const out: MarketRow[] = [];
    for (const m of markets.value) {
      const tokens = [...m.tokens].sort((a, b) => a.outcome_index - b.outcome_index);
      tokens.forEach((t, i) => {
        out.push({
          token_id: t.token_id,
          condition_id: m.condition_id,
          question: m.question,
          outcome: t.outcome,
          outcome_index: t.outcome_index,
          first: i === 0,
          span: tokens.length,
          closed: Boolean(m.closed),
        });
      });
    }
    return out;
  });

  const byToken = computed(() => {
    const map = new Map<string, MarketRow>();
    for (const r of rows.value) map.set(r.token_id, r);
    return map;
  });

  async function load(): Promise<void> {
    loading.value = true;
    try {
      const res = await getJson<MarketsResponse>('/api/markets');
      markets.value = res.markets;
      error.value = null;
      loaded.value = true;
    } catch (err) {
      error.value = errorText(err);
    } finally {
      loading.value = false;
    }
  }

  function applyPrice(p: PriceMessage): void {
    pending.set(p.token_id, { bid: p.bid, ask: p.ask, mid: p.mid, bid_size: p.bid_size, ask_size: p.ask_size, ts: p.ts });
    if (loaded.value && !byToken.value.has(p.token_id) && Date.now() - lastUnknownRefetch > UNKNOWN_TOKEN_REFETCH_MS) {
      lastUnknownRefetch = Date.now();
      void load();
    }
    // Batch bursts into one render; a timer (not rAF) keeps updating in background tabs.
    flushTimer ??= setTimeout(flush, 50);
  }

  function flush(): void {
    flushTimer = null;
    for (const [k, q] of pending) quotes.value.set(k, q);
    pending.clear();
    triggerRef(quotes);
  }

  function quote(tokenId: string): Quote | undefined {
    return quotes.value.get(tokenId);
  }

  return { markets, loaded, loading, error, quotes, rows, byToken, load, applyPrice, quote };
});

import { onScopeDispose, ref, type Ref } from 'vue';

/** A clock that ticks once a second, for "3s ago" labels, stopped when the component goes away. */
export function useNow(intervalMs = 1000): Ref<number> {
  const now = ref(Date.now());
  const t = setInterval(() => (now.value = Date.now()), intervalMs);
  onScopeDispose(() => clearInterval(t));
  return now;
}

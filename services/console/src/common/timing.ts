// Coalescing: many live events cause one reload, `ms` after the first of them (trailing), and
// no sooner than `spacing` ms after the previous reload began (a burst of events costs a
// reload per `spacing`, a lone event is seen after `ms`).
export function coalesce(run: () => Promise<void> | void, ms: number, spacing = 0): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let last = -Infinity;
  return () => {
    if (timer !== null) return;
    const wait = Math.max(ms, last + spacing - Date.now());
    timer = setTimeout(() => {
      timer = null;
      last = Date.now();
      void run();
    }, wait);
  };
}

/** Run `run` once at `at` (an ISO time), replacing the previous schedule of the same slot. */
export function scheduleAt(run: () => void, at: string | null): () => void {
  if (!at) return () => undefined;
  const wait = Math.max(new Date(at).getTime() - Date.now() + 500, 1000);
  const timer = setTimeout(run, Math.min(wait, 2 ** 31 - 1));
  return () => clearTimeout(timer);
}

// Coalescing: many live events cause one reload, at most once per `ms` (trailing).
export function coalesce(run: () => Promise<void> | void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      void run();
    }, ms);
  };
}

/** Run `run` once at `at` (an ISO time), replacing the previous schedule of the same slot. */
export function scheduleAt(run: () => void, at: string | null): () => void {
  if (!at) return () => undefined;
  const wait = Math.max(new Date(at).getTime() - Date.now() + 500, 1000);
  const timer = setTimeout(run, Math.min(wait, 2 ** 31 - 1));
  return () => clearTimeout(timer);
}

// Coalesces calls of an async refresh: while one run is in flight, further calls only mark it
// dirty, and one more run starts when it finishes. A burst of N engine events (an offline backlog
// of thousands of messages) then costs at most two `listChats` round trips instead of N, and the
// last run always starts after the last call, so the result is never older than the newest event.

export function coalesce(run: () => Promise<void>): () => Promise<void> {
  let inFlight: Promise<void> | null = null;
  let dirty = false;

  const start = (): Promise<void> => {
    dirty = false;
    inFlight = run()
      .catch(() => undefined)
      .then(() => {
        inFlight = null;
        if (dirty) return start();
        return undefined;
      });
    return inFlight;
  };

  return () => {
    if (inFlight !== null) {
      dirty = true;
      return inFlight;
    }
    return start();
  };
}

/**
 * Background rounds (a bootstrap node's gossip, a node's descriptor rounds) that a timer, a caller
 * and a stream of events may all ask for: at most one runs and one waits, so asking faster than a
 * round takes never builds a queue.
 */

/** `fn` wrapped so that at most one call runs and one waits; callers while one waits share it. */
export function coalesce<T>(fn: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  let waiting: Promise<T> | undefined;
  const start = (): Promise<T> => {
    const run = fn().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  };
  return () => {
    if (!running) return start();
    waiting ??= running
      .catch(() => undefined)
      .then(() => {
        waiting = undefined;
        return start();
      });
    return waiting;
  };
}

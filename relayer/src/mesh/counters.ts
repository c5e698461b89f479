/**
 * Plain counters for the mesh's decisions and observations. Metrics (prom-client, relayer/src/metrics/)
 * attach through `onIncrement`: each call names the counter and its labels, so a Prometheus counter
 * vector per name can mirror these without the mesh importing the metrics library.
 */
export type CounterLabels = Record<string, string>;
export type CounterHook = (name: string, labels: CounterLabels, by: number) => void;

export class Counters {
  /** "name" or "name{label=value,...}" → count. */
  readonly values: Record<string, number> = {};
  onIncrement: CounterHook | undefined;

  constructor(onIncrement?: CounterHook) {
    this.onIncrement = onIncrement;
  }

  inc(name: string, labels: CounterLabels = {}, by = 1): void {
    const keys = Object.keys(labels).sort();
    const key = keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}=${labels[k]}`).join(",")}}`;
    this.values[key] = (this.values[key] ?? 0) + by;
    this.onIncrement?.(name, labels, by);
  }

  get(name: string, labels: CounterLabels = {}): number {
    const keys = Object.keys(labels).sort();
    const key = keys.length === 0 ? name : `${name}{${keys.map((k) => `${k}=${labels[k]}`).join(",")}}`;
    return this.values[key] ?? 0;
  }
}

/**
 * Simulated time: one discrete event queue for the whole group. Events run in
 * (time, insertion order); between events the world drains every pending
 * promise callback (see {@link World.settle}) so the real code's `await`s run
 * in a fixed order with no real I/O. Every event is written to the trace; the
 * trace's sha256 is the run's `traceHash`.
 */
import { createHash, type Hash } from 'node:crypto';

interface SimEvent {
  at: number;
  seq: number;
  fn: () => void;
}

/** A binary min-heap of events by (at, seq). */
class EventHeap {
  readonly #h: SimEvent[] = [];
  get size(): number {
    return this.#h.length;
  }
  push(e: SimEvent): void {
    const h = this.#h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, h[i]!)) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }
  peek(): SimEvent | undefined {
    return this.#h[0];
  }
  pop(): SimEvent | undefined {
    const h = this.#h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l]!, h[m]!)) m = l;
        if (r < h.length && less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}

function less(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** How many trace lines a failure report can show. */
const TRACE_TAIL = 60;

export class World {
  /** Simulated time, ms since the start of the run. */
  now = 0;
  readonly #q = new EventHeap();
  #seq = 0;
  readonly #hash: Hash = createHash('sha256');
  readonly #tail: string[] = [];
  /** Events run. */
  events = 0;

  /** Run `fn` at simulated time `at` (never before now). */
  at(at: number, fn: () => void): void {
    this.#q.push({ at: Math.max(this.now, at), seq: this.#seq++, fn });
  }

  after(ms: number, fn: () => void): void {
    this.at(this.now + Math.max(0, ms), fn);
  }

  /** Append one line to the trace (hashed; the last lines kept for reports). */
  trace(line: string): void {
    const l = `${this.now} ${line}`;
    this.#hash.update(l);
    this.#hash.update('\n');
    this.#tail.push(l);
    if (this.#tail.length > TRACE_TAIL * 2) this.#tail.splice(0, this.#tail.length - TRACE_TAIL);
  }

  /** Hash one line into the trace without keeping it for reports (every message). */
  note(line: string): void {
    this.#hash.update(`${this.now} ${line}\n`);
  }

  tail(n = 30): string[] {
    return this.#tail.slice(-n);
  }

  traceHash(): string {
    return this.#hash.copy().digest('hex');
  }

  /**
   * Run events up to and including time `end`, settling promises after each;
   * `check` runs after every event; `stop` ends the run early (a violation:
   * the trace's tail then shows what led to it).
   */
  async runUntil(end: number, check: () => void, stop: () => boolean = () => false): Promise<void> {
    for (;;) {
      if (stop()) return;
      const e = this.#q.peek();
      if (e === undefined || e.at > end) break;
      this.#q.pop();
      this.now = e.at;
      this.events++;
      e.fn();
      await settle();
      check();
    }
    this.now = Math.max(this.now, end);
  }
}

/**
 * Drain the microtask queue and the promise chains it feeds. Nothing in the
 * simulated world does real I/O, so every pending callback is a promise
 * continuation; a few macrotask turns let chains of any depth run out in the
 * same order every time.
 */
export async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

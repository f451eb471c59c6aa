/**
 * How a fleet's phones are dealt to worker threads: pure, so the split is the
 * same on every run and every machine given the same count and worker count.
 *
 * Round robin (phone n to worker (n − 1) mod W), not contiguous blocks: the
 * busy phones are 1 … `busy` and a start batch is the next `batchSize`
 * numbers, so dealing them out gives every worker its share of both; with
 * blocks, worker 0 would hold every busy phone and start its batch while the
 * last worker still waited for its first.
 */
import { availableParallelism } from 'node:os';
import { IpphoneError } from '../lib/errors.js';

/** Most worker threads one fleet runs (each a Node isolate of ~10 MiB before its phones). */
export const MAX_WORKERS = 64;

/**
 * The worker count when none is given: the CPUs this process may use
 * (`os.availableParallelism()`), at least 1 and at most {@link MAX_WORKERS}.
 * `cpus` is injectable for tests.
 */
export function defaultWorkers(cpus: number = availableParallelism()): number {
  return Math.max(1, Math.min(MAX_WORKERS, Number.isSafeInteger(cpus) ? cpus : 1));
}

/** Every problem with a worker count, in words (empty when it is good). */
export function workersProblems(workers: number): string[] {
  return Number.isSafeInteger(workers) && workers >= 1 && workers <= MAX_WORKERS ? [] : [`workers must be an integer from 1 to ${MAX_WORKERS} (got ${workers})`];
}

/**
 * The phone numbers (1 … `count`) of each worker, ascending within a worker.
 * Never more workers than phones: a worker with no phone would cost a thread
 * for nothing, so `min(workers, count)` slices come back, none empty, sizes
 * differing by at most one. Throws USAGE on a bad count or worker count.
 */
export function fleetSlices(count: number, workers: number): number[][] {
  const problems = [...(Number.isSafeInteger(count) && count >= 1 ? [] : [`count must be a positive integer (got ${count})`]), ...workersProblems(workers)];
  if (problems.length > 0) throw new IpphoneError(problems.join('\n'), 'USAGE', { problems });
  const w = Math.min(workers, count);
  const slices: number[][] = Array.from({ length: w }, () => []);
  for (let n = 1; n <= count; n++) slices[(n - 1) % w]!.push(n);
  return slices;
}

/** The worker (index into {@link fleetSlices}) that runs phone number `n`. */
export function workerOf(n: number, count: number, workers: number): number {
  return (n - 1) % Math.min(workers, count);
}

/**
 * Throws USAGE unless `numbers` is a strictly ascending list of integers from
 * 1 to `count` (a slice as {@link fleetSlices} makes them).
 */
export function assertNumbers(numbers: readonly number[], count: number): void {
  let prev = 0;
  for (const n of numbers) {
    if (!Number.isSafeInteger(n) || n <= prev || n > count) {
      throw new IpphoneError(`phone numbers must ascend from 1 to count (${count}) (got ${JSON.stringify(n)} after ${prev})`, 'USAGE', { count });
    }
    prev = n;
  }
}

/**
 * The project's one open-loop driver, for the load runner (drive.ts), the benchmarks and the
 * overload test: each arrival is sent at its scheduled time whatever the server does, and
 * `send` gets that scheduled time so latency is measured from it (a late sender then counts
 * against the server, not in its favour: no coordinated omission). An arrival that finds
 * `maxInFlight` requests outstanding is dropped and reported, not queued.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Arrival {
  /** Position in the schedule. */
  readonly index: number;
  /** When it was due (`performance.now()` clock): measure latency from here. */
  readonly scheduledMs: number;
}

export interface OpenLoopOptions {
  /** Arrival times in ms from the start, ascending (arrivals.ts makes them). */
  readonly offsetsMs: Iterable<number>;
  /** Sends one arrival; resolves when it is answered. A rejection ends the run with that error. */
  readonly send: (arrival: Arrival) => Promise<void>;
  /** Outstanding requests at most; an arrival beyond it is dropped. Unbounded by default. */
  readonly maxInFlight?: number;
  /** Told of each dropped arrival as it happens (the result lists them all too). */
  readonly onDrop?: (arrival: Arrival) => void;
  /** Asked before each arrival: true ends the schedule early (the sent requests are still awaited). */
  readonly stop?: () => boolean;
  /** The schedule's origin; a few ms from now by default, so the first arrival is not already late. */
  readonly startMs?: number;
}

export interface OpenLoopResult {
  readonly startedMs: number;
  readonly endedMs: number;
  readonly sent: number;
  readonly dropped: readonly Arrival[];
}

export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const startedMs = options.startMs ?? performance.now() + 20;
  const maxInFlight = options.maxInFlight ?? Number.POSITIVE_INFINITY;
  const pending = new Set<Promise<void>>();
  const dropped: Arrival[] = [];
  const failures: unknown[] = [];
  let index = 0;
  let sent = 0;
  for (const offset of options.offsetsMs) {
    if (options.stop?.() === true) break;
    const arrival: Arrival = { index: index++, scheduledMs: startedMs + offset };
    // Timers may fire a fraction of a millisecond early: sleep again until the time is due.
    for (let wait = arrival.scheduledMs - performance.now(); wait > 0; wait = arrival.scheduledMs - performance.now())
      await sleep(wait);
    if (pending.size >= maxInFlight) {
      dropped.push(arrival);
      options.onDrop?.(arrival);
      continue;
    }
    sent++;
    const done: Promise<void> = options.send(arrival).then(
      () => void pending.delete(done),
      (error: unknown) => {
        pending.delete(done);
        failures.push(error);
      },
    );
    pending.add(done);
  }
  while (pending.size > 0) await Promise.all([...pending]);
  if (failures.length > 0) throw failures[0];
  return { startedMs, endedMs: performance.now(), sent, dropped };
}

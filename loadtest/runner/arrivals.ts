/**
 * Arrival schedules (ms offsets from the scenario's start) for the open-loop runner: constant
 * (evenly spaced, like k6's constant-arrival-rate), Poisson (exponential gaps) and ramping
 * (piecewise-linear rate; the n-th arrival is where the integrated rate reaches n, like k6's
 * ramping-arrival-rate).
 */
import type { Arrivals, RampStage } from '../scenarios/scenarios.js';

export function arrivalOffsetsMs(
  arrivals: Arrivals,
  random: () => number,
  maxCount = Number.POSITIVE_INFINITY,
): number[] {
  switch (arrivals.kind) {
    case 'constant':
      return constantOffsets(arrivals.rate, arrivals.durationS, maxCount);
    case 'poisson':
      return poissonOffsets(arrivals.rate, arrivals.durationS, random, maxCount);
    case 'ramping':
      return rampingOffsets(arrivals.startRate, arrivals.stages, maxCount);
  }
}

function checkRate(rate: number): void {
  if (!(rate >= 0) || !Number.isFinite(rate))
    throw new RangeError(`arrival rate must be a finite number ≥ 0, got ${rate}`);
}

function constantOffsets(rate: number, durationS: number, maxCount: number): number[] {
  checkRate(rate);
  const count = Math.min(maxCount, Math.floor(rate * durationS + 1e-9));
  return Array.from({ length: count }, (_, i) => (i * 1000) / rate);
}

function poissonOffsets(rate: number, durationS: number, random: () => number, maxCount: number): number[] {
  checkRate(rate);
  const out: number[] = [];
  if (rate === 0) return out;
  let t = 0;
  for (;;) {
    t += -Math.log(1 - random()) / rate; // exponential gap, mean 1/rate s
    if (t >= durationS || out.length >= maxCount) return out;
    out.push(t * 1000);
  }
}

/**
 * Within a stage the rate goes linearly from r0 to r1 over D seconds, so the arrivals counted
 * τ seconds into it are Λ(τ) = r0·τ + (r1 − r0)·τ²/(2D); the next arrival is where Λ reaches
 * the next integer (solved in closed form).
 */
function rampingOffsets(startRate: number, stages: readonly RampStage[], maxCount: number): number[] {
  checkRate(startRate);
  const out: number[] = [];
  let stageStartS = 0;
  let rate0 = startRate;
  let counted = 0; // integrated rate at the stage's start
  for (const stage of stages) {
    checkRate(stage.target);
    const d = stage.durationS;
    const slope = d > 0 ? (stage.target - rate0) / d : 0;
    const stageTotal = rate0 * d + (slope * d * d) / 2;
    let next = out.length; // index of the next arrival = the integer Λ must reach
    while (next < counted + stageTotal - 1e-9 && out.length < maxCount) {
      const m = next - counted;
      const tau =
        Math.abs(slope) < 1e-12 ? m / rate0 : (-rate0 + Math.sqrt(Math.max(0, rate0 * rate0 + 2 * slope * m))) / slope;
      out.push((stageStartS + tau) * 1000);
      next++;
    }
    counted += stageTotal;
    stageStartS += d;
    rate0 = stage.target;
  }
  return out;
}

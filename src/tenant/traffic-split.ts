/**
 * Weighted choice between versions of a task (canary splits such as 90/10). A request that
 * carries an id is sticky: the id (with tenant and task, so different tasks split
 * independently) is hashed to a point in [0, 1), so the same id always lands on the same
 * version while the weights stay the same. Requests without an id draw from a seeded RNG.
 */
import { createHash } from 'node:crypto';

export interface WeightedVersion {
  readonly version: string;
  readonly weight: number;
}

/** The version whose cumulative-weight interval holds `point` (in [0, 1)); null for an empty list. */
export function pickWeighted(options: readonly WeightedVersion[], point: number): string | null {
  const total = options.reduce((sum, o) => sum + o.weight, 0);
  if (options.length === 0 || total <= 0) return null;
  let cumulative = 0;
  for (const option of options) {
    cumulative += option.weight / total;
    if (point < cumulative) return option.version;
  }
  return options[options.length - 1]!.version; // point ≈ 1 after rounding
}

/** A stable point in [0, 1) for a routing id: the first 32 bits of sha256(scope NUL id). */
export function stickyPoint(scope: string, id: string): number {
  const digest = createHash('sha256').update(scope).update('\0').update(id).digest();
  return digest.readUInt32BE(0) / 4294967296;
}

/**
 * Which weights a compression touches and how. Patterns are globs over initializer names
 * (`*` matches any run of characters, including dots). Three outcomes per weight:
 * - skipped: excluded, or its delta is exactly zero (a frozen weight costs nothing);
 * - dense: kept whole (by default the classifier head, as the DARE paper does for encoders);
 * - sparse: pruned by the chosen method.
 */
import { globToRegExp } from '../core/glob.js';

export interface TensorSelectionOptions {
  /** Only weights matching one of these are considered; empty means all. */
  readonly include: readonly string[];
  /** Weights matching one of these are never part of the delta. */
  readonly exclude: readonly string[];
  /** Weights matching one of these are stored dense (not pruned). */
  readonly dense: readonly string[];
}

/** Default dense patterns: classifier heads under the names our exporters and common models use. */
export const DEFAULT_DENSE_PATTERNS: readonly string[] = ['classifier*', 'head*', '*.head.*', 'lm_head*'];

export type TensorTreatment = 'skip' | 'dense' | 'sparse';

export function buildTensorSelector(options: TensorSelectionOptions): (name: string) => TensorTreatment {
  const include = options.include.map(globToRegExp);
  const exclude = options.exclude.map(globToRegExp);
  const dense = options.dense.map(globToRegExp);
  return (name) => {
    if (include.length > 0 && !include.some((re) => re.test(name))) return 'skip';
    if (exclude.some((re) => re.test(name))) return 'skip';
    if (dense.some((re) => re.test(name))) return 'dense';
    return 'sparse';
  };
}

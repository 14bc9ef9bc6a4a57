/**
 * The per-request inputs of a mixed batch, built on the host before the first segment runs:
 * each batch item gets its request's task delta (or the weight's own value plus that delta)
 * for every parameter the graph takes per request, and the Δ rows of its ids for gathered
 * tables. Items of requests whose task leaves a weight alone get zeros (or the base value).
 */
import type { ResidentDelta, ResidentTensorDelta } from '../../../deltas/types.js';
import { asDecoded } from '../resident-form.js';
import type { GatherInputPlan, ParamInputPlan } from './mixed-rewrite.js';

const byWeight = new WeakMap<ResidentDelta, Map<string, ResidentTensorDelta>>();

/** The delta's tensors by weight name (computed once per delta object). */
export function tensorsByWeight(delta: ResidentDelta): ReadonlyMap<string, ResidentTensorDelta> {
  let map = byWeight.get(delta);
  if (!map) {
    map = new Map(delta.tensors.map((t) => [t.name, t]));
    byWeight.set(delta, map);
  }
  return map;
}

/** One run's requests: how many batch items each holds and its delta (null: the base model). */
export interface ItemSpan {
  readonly items: number;
  readonly delta: ResidentDelta | null;
}

export function buildParamInput(
  plan: ParamInputPlan,
  spans: readonly ItemSpan[],
  baseValue: Float32Array | undefined,
): Float32Array {
  const width = plan.itemShape.reduce((a, b) => a * b, 1);
  const total = spans.reduce((n, s) => n + s.items, 0);
  const out = new Float32Array(total * width);
  let item = 0;
  for (const span of spans) {
    const tensor = span.delta ? tensorsByWeight(span.delta).get(plan.weight) : undefined;
    for (let k = 0; k < span.items; k++, item++) {
      const row = out.subarray(item * width, (item + 1) * width);
      if (plan.feeds === 'value') row.set(baseValue!);
      if (tensor) addInto(row, tensor);
    }
  }
  return out;
}

export function buildGatherInput(
  plan: GatherInputPlan,
  ids: BigInt64Array | Int32Array,
  idsDims: readonly number[],
  tableRows: number,
  spans: readonly ItemSpan[],
): Float32Array {
  const width = plan.rowShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(ids.length * width);
  const items = idsDims[0] ?? 1;
  const perItem = items === 0 ? 0 : ids.length / items;
  let item = 0;
  for (const span of spans) {
    const tensor = span.delta ? tensorsByWeight(span.delta).get(plan.weight) : undefined;
    if (!tensor) {
      item += span.items;
      continue;
    }
    for (let p = item * perItem; p < (item + span.items) * perItem; p++) {
      let row = Number(ids[p]);
      if (row < 0) row += tableRows;
      if (row < 0 || row >= tableRows) continue; // ORT's Gather refuses the id itself
      addRow(out.subarray(p * width, (p + 1) * width), tensor, row, width);
    }
    item += span.items;
  }
  return out;
}

function addInto(row: Float32Array, resident: ResidentTensorDelta): void {
  const tensor = asDecoded(resident);
  if (tensor.kind === 'dense') {
    for (let i = 0; i < row.length; i++) row[i] = row[i]! + tensor.values[i]!;
    return;
  }
  const { indices, values } = tensor;
  for (let k = 0; k < indices.length; k++) row[indices[k]!] = row[indices[k]!]! + values[k]!;
}

/** Adds row `row` of a `[rows, width]` delta into `target`. */
function addRow(target: Float32Array, resident: ResidentTensorDelta, row: number, width: number): void {
  const tensor = asDecoded(resident);
  const start = row * width;
  if (tensor.kind === 'dense') {
    for (let i = 0; i < width; i++) target[i] = target[i]! + tensor.values[start + i]!;
    return;
  }
  const { indices, values } = tensor;
  for (let k = lowerBound(indices, start); k < indices.length && indices[k]! < start + width; k++) {
    target[indices[k]! - start] = target[indices[k]! - start]! + values[k]!;
  }
}

function lowerBound(sorted: Uint32Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What a mixed graph needs, besides the requests' own inputs, to build its per-item inputs. */
export interface PerItemPlans {
  readonly params: readonly ParamInputPlan[];
  readonly gathers: readonly GatherInputPlan[];
  /** Base values of the weights fed as values (a per-item LayerNorm scale starts from the base's). */
  readonly baseValues: ReadonlyMap<string, Float32Array>;
  /** Rows of each gathered table (ids index it; negative ids count from its end). */
  readonly tableRows: ReadonlyMap<string, number>;
}

type Weights = ReadonlyMap<string, { readonly shape: readonly number[]; readonly data: Float32Array }>;

/**
 * A mixed rewrite's per-item plans with what they read from the base, looked up once at start-up.
 * `alsoBaseValues`: more weights whose base values the pipeline reads (the segments' folded biases).
 */
export function perItemPlans(
  mixed: { readonly params: readonly ParamInputPlan[]; readonly gathers: readonly GatherInputPlan[] },
  weights: Weights,
  others: Weights,
  alsoBaseValues: readonly string[] = [],
): PerItemPlans {
  const valueOf = (name: string) => (weights.get(name) ?? others.get(name))!.data;
  const valued = [...mixed.params.filter((p) => p.feeds === 'value').map((p) => p.weight), ...alsoBaseValues];
  return {
    params: mixed.params,
    gathers: mixed.gathers,
    baseValues: new Map(valued.map((name) => [name, valueOf(name)])),
    tableRows: new Map(mixed.gathers.map((g) => [g.weight, weights.get(g.weight)!.shape[0]!])),
  };
}

/** One float32 input of a mixed batch, before it becomes an ORT tensor or an addon feed. */
export interface PerItemInput {
  readonly name: string;
  readonly dims: number[];
  readonly data: Float32Array;
}

/**
 * The per-item parameter rows and gathered Δ rows of one batch: the inputs both mixed pipelines
 * (segments and one session) feed beside the requests' own. `joined` holds the requests' inputs
 * concatenated along the batch dimension (the gathers read their ids there).
 */
export function buildPerItemInputs(
  plans: PerItemPlans,
  joined: Readonly<Record<string, { readonly data: unknown; readonly dims: readonly number[] }>>,
  spans: readonly ItemSpan[],
): PerItemInput[] {
  const inputs: PerItemInput[] = [];
  for (const plan of plans.params) {
    const data = buildParamInput(plan, spans, plans.baseValues.get(plan.weight));
    const width = plan.itemShape.reduce((a, b) => a * b, 1);
    inputs.push({ name: plan.input, dims: [data.length / width, ...plan.itemShape], data });
  }
  for (const plan of plans.gathers) {
    const ids = joined[plan.ids]!;
    const data = buildGatherInput(
      plan,
      ids.data as BigInt64Array | Int32Array,
      ids.dims,
      plans.tableRows.get(plan.weight)!,
      spans,
    );
    inputs.push({ name: plan.input, dims: [...ids.dims, ...plan.rowShape], data });
  }
  return inputs;
}

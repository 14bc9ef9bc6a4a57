import { readInputFile } from '../../core/read-input-file.js';
import { decodeDelta, inspectDelta } from '../../deltas/format/delta-file.js';
import { parseCommandArgs, requireString } from '../args.js';

export const INSPECT_USAGE = `usage: deltaserve inspect --delta DELTA.safetensors [--table]

Prints the delta's metadata and per-tensor statistics as JSON on stdout (like every command);
--table prints them as a table for people instead.`;

export async function inspectCommand(argv: string[]): Promise<string> {
  const { values } = parseCommandArgs(
    argv,
    { delta: { type: 'string' }, table: { type: 'boolean', default: false } },
    INSPECT_USAGE,
  );
  const path = requireString(values.delta, 'delta', INSPECT_USAGE);
  const delta = decodeDelta(await readInputFile(path, 'delta file'));
  const report = inspectDelta(delta);
  if (values.table) return renderInspection(path, delta.metadata, report);
  return JSON.stringify({ metadata: delta.metadata, ...report }, null, 2);
}

function renderInspection(path: string, metadata: object, report: ReturnType<typeof inspectDelta>): string {
  const lines = [
    `${path}`,
    ...Object.entries(metadata).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`),
    '',
  ];
  const header = ['tensor', 'kind', 'shape', 'nonzeros', 'density', 'min', 'max', 'mean|v|', 'bytes', 'bits/param'];
  const rows = report.tensors.map((t) => [
    t.name,
    t.kind,
    `[${t.shape.join(',')}]`,
    String(t.nnz),
    t.density.toFixed(4),
    exponential(t.minValue),
    exponential(t.maxValue),
    exponential(t.meanAbs),
    String(t.bytesOnDisk),
    t.bitsPerParam.toFixed(3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const format = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  lines.push(format(header), ...rows.map(format));
  const t = report.totals;
  lines.push(
    '',
    `total: ${t.tensorCount} tensors, ${t.nnz} nonzeros of ${t.numel} params (density ${t.density.toFixed(4)}), mean |v| ${exponential(t.meanAbs)}, ${t.fileBytes} bytes (format version ${(metadata as { formatVersion?: number }).formatVersion ?? 1}), ${t.bitsPerParam.toFixed(3)} bits/param, ${t.memoryBytes} bytes decoded in memory`,
  );
  return lines.join('\n');
}

function exponential(value: number | null): string {
  return value === null ? '-' : value.toExponential(2);
}

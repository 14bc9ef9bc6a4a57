import { readInputFile } from '../../core/read-input-file.js';
import { decodeDelta } from '../../deltas/format/delta-file.js';
import { LocalRunner } from '../../eval/local-runner.js';
import { loadSampleSet } from '../../eval/dataset.js';
import { accuracyOf, predictAll } from '../../eval/accuracy.js';
import { DS_ERR_CLI_USAGE } from '../../core/errors.js';
import { numberOption, parseCommandArgs, requireString } from '../args.js';

export const EVAL_USAGE =
  'usage: deltaserve eval --base BASE.onnx [--delta DELTA.safetensors] --data SAMPLES.safetensors [--classes K] [--batch N]';

export interface EvalResult {
  readonly accuracy: number;
  readonly samples: number;
  readonly classes: number | null;
}

export async function evalCommand(argv: string[]): Promise<EvalResult> {
  const { values } = parseCommandArgs(
    argv,
    {
      base: { type: 'string' },
      delta: { type: 'string' },
      data: { type: 'string' },
      classes: { type: 'string' },
      batch: { type: 'string' },
    },
    EVAL_USAGE,
  );
  const basePath = requireString(values.base, 'base', EVAL_USAGE);
  const dataPath = requireString(values.data, 'data', EVAL_USAGE);
  const classes =
    values.classes === undefined
      ? undefined
      : numberOption(values.classes, 'classes', 0, (n) => Number.isInteger(n) && n >= 2, 'an integer >= 2');
  const batchSize = numberOption(values.batch, 'batch', 256, (n) => Number.isInteger(n) && n > 0, 'a positive integer');
  const runner = await LocalRunner.open(basePath);
  try {
    const delta = values.delta
      ? decodeDelta(await readInputFile(String(values.delta), 'delta file'), {
          baseShapes: runner.base.patchableShapes,
          expectedBaseFingerprint: runner.base.fingerprint,
        })
      : null;
    const set = await loadSampleSet(dataPath, runner.base.io);
    if (!set.labels) throw new DS_ERR_CLI_USAGE(`${dataPath} has no labels to evaluate against`);
    const logits = await predictAll(runner, set, delta, { batchSize, ...(classes !== undefined && { classes }) });
    return { accuracy: accuracyOf(logits, set.labels, classes), samples: set.size, classes: classes ?? null };
  } finally {
    await runner.close();
  }
}

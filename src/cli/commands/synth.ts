import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DS_ERR_CLI_USAGE } from '../../core/errors.js';
import { saveOnnxModel } from '../../onnx/model-file.js';
import { BERT_BASE_SHAPE, TINY_ENCODER, buildSyntheticEncoder, syntheticFinetune } from '../../onnx/synthetic.js';
import { numberOption, parseCommandArgs, progress, requireString } from '../args.js';

export const SYNTH_USAGE =
  'usage: deltaserve synth --out DIR [--preset tiny|bert-base] [--finetunes N] [--scale S] [--seed N]';

const PRESETS = { tiny: TINY_ENCODER, 'bert-base': BERT_BASE_SHAPE } as const;

/** Writes a synthetic base (`base.onnx`) and N synthetic fine-tunes (`finetuned-<i>.onnx`). */
export async function synthCommand(argv: string[]): Promise<string[]> {
  const { values } = parseCommandArgs(
    argv,
    {
      out: { type: 'string' },
      preset: { type: 'string', default: 'tiny' },
      finetunes: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
    },
    SYNTH_USAGE,
  );
  const out = requireString(values.out, 'out', SYNTH_USAGE);
  const preset = PRESETS[values.preset as keyof typeof PRESETS];
  if (!preset) throw new DS_ERR_CLI_USAGE(`--preset must be one of ${Object.keys(PRESETS).join(', ')}`);
  const finetunes = numberOption(
    values.finetunes,
    'finetunes',
    1,
    (n) => Number.isInteger(n) && n >= 0,
    'a non-negative integer',
  );
  const scale = numberOption(values.scale, 'scale', 0.002, (n) => n > 0, 'a positive number');
  const seed = numberOption(values.seed, 'seed', 0, (n) => Number.isInteger(n) && n >= 0, 'a non-negative integer');
  await mkdir(out, { recursive: true });
  const base = buildSyntheticEncoder({ ...preset, seed });
  const written = [join(out, 'base.onnx')];
  await saveOnnxModel(base, written[0]!);
  for (let i = 0; i < finetunes; i++) {
    const path = join(out, `finetuned-${i}.onnx`);
    await saveOnnxModel(syntheticFinetune(base, { scale, seed: seed + 1 + i }), path);
    written.push(path);
    progress(`wrote ${path}`);
  }
  return written;
}

#!/usr/bin/env node
/**
 * The `deltaserve` command: one binary, sub-commands. Errors print as one line on stderr with
 * their code and exit non-zero (2 for usage mistakes, 1 for everything else).
 */
import { COMPRESS_USAGE, compressCommand } from './commands/compress.js';
import { INSPECT_USAGE, inspectCommand } from './commands/inspect.js';
import { EVAL_USAGE, evalCommand } from './commands/eval.js';
import { SYNTH_USAGE, synthCommand } from './commands/synth.js';
import { CALIB_USAGE, calibCommand } from './commands/calib.js';
import { DS_ERR_CLI_USAGE, isError } from '../core/errors.js';

const USAGE = `usage: deltaserve <command> [options]

commands:
  serve      start the HTTP gateway (see README: configuration)
  compress   make a delta file from a base and a fine-tune (ONNX or state dict; dare, darex-q, magnitude, auto)
  calib      make a calibration file from a folder of inputs (PNG images, .npy or .json tensors)
  inspect    show a delta file's metadata and per-tensor statistics
  eval       accuracy of base (+ delta) on a labelled sample set
  synth      write synthetic transformer-encoder models (for tests and benchmarks)

run 'deltaserve <command> --help' for a command's options`;

interface Command {
  readonly usage: string;
  run(argv: string[]): Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  compress: { usage: COMPRESS_USAGE, run: async (argv) => print(await compressCommand(argv)) },
  inspect: { usage: INSPECT_USAGE, run: async (argv) => console.log(await inspectCommand(argv)) },
  calib: { usage: CALIB_USAGE, run: async (argv) => print(await calibCommand(argv)) },
  eval: { usage: EVAL_USAGE, run: async (argv) => print(await evalCommand(argv)) },
  synth: { usage: SYNTH_USAGE, run: async (argv) => print(await synthCommand(argv)) },
  serve: {
    usage: 'usage: deltaserve serve [--config FILE]   (environment variables override the file; see README)',
    run: async (argv) => {
      const { serveCommand } = await import('./commands/serve.js');
      await serveCommand(argv);
    },
  },
};

function print(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`error: unknown command ${JSON.stringify(name)}\n${USAGE}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (error) {
    const e = error as Error & { code?: string };
    const usage = isError(e, DS_ERR_CLI_USAGE) || e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
    console.error(`error${e.code ? ` [${e.code}]` : ''}: ${e.message}`);
    return usage ? 2 : 1;
  }
}

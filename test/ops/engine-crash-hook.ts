/**
 * A test gateway's entry point, `node --import tsx test/ops/engine-crash-hook.ts serve ...`: the
 * CLI as src/cli/bin.ts runs it, plus one drill: on SIGUSR2 the engine's own fault injection
 * (`crashWorkerOnNextBatch`, the hook the reliability tests use) makes the worker die on its
 * next batch, so the process restarts it for real and exports the restart.
 */
import { Engine } from '../../src/engine/engine.js';
import { main } from '../../src/cli/main.js';

const start = Engine.start.bind(Engine);
Engine.start = async (options) => {
  const engine = await start(options);
  process.on('SIGUSR2', () => {
    engine.crashWorkerOnNextBatch().catch((error: Error) => process.stderr.write(`crash hook: ${error.message}\n`));
  });
  return engine;
};

void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  if (code !== 0) process.exit(code);
});

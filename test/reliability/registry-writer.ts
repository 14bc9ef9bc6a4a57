/**
 * Child process of registry-crash.test.ts (not a test): opens the registry on the state file
 * given as argv[2] and registers tasks t<N>, t<N+1>, ... in a loop until it is killed, printing
 * `begin i` before and `done i` after each registration (synchronous writes: nothing is lost in
 * a buffer when the process dies).
 */
import { writeSync } from 'node:fs';
import { TaskRegistry } from '../../src/registry/task-registry.js';

const stateFile = process.argv[2]!;
const registry = await TaskRegistry.open({ declared: [], stateFile });
let next = registry.names().length;
writeSync(1, `ready ${next}\n`);
for (;;) {
  const i = next++;
  writeSync(1, `begin ${i}\n`);
  await registry.register(
    // A padded description makes the file (and so the write + fsync window) a few hundred KB.
    {
      name: `t${i}`,
      version: '1',
      uri: `t${i}.safetensors`,
      sha256: 'a'.repeat(64),
      description: `task ${i} `.padEnd(4000, '.'),
      labels: null,
      numClasses: null,
    },
    { validate: async () => undefined },
  );
  writeSync(1, `done ${i}\n`);
}

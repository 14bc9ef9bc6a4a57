/** loadtest/gateway.yaml declares a canary version of a zoo delta by its sha256: keep it in step with a rebuilt zoo. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('every delta loadtest/gateway.yaml declares matches its sha256 (the zoo may have been rebuilt)', async () => {
  const config = parse(await readFile(join(ROOT, 'loadtest/gateway.yaml'), 'utf8')) as {
    registry: { tasks: { name: string; uri: string; sha256: string }[] };
  };
  assert.ok(config.registry.tasks.length > 0);
  for (const task of config.registry.tasks) {
    const bytes = await readFile(join(ROOT, 'models', task.uri));
    assert.equal(
      createHash('sha256').update(bytes).digest('hex'),
      task.sha256,
      `${task.name}: ${task.uri} changed; update its sha256 in loadtest/gateway.yaml`,
    );
  }
});

/** Reads and checks a load-test data file (loadtest/data/*.json) before anything is sent. */
import { readFile } from 'node:fs/promises';
import type { LoadData } from '../scenarios/scenarios.js';

export async function readLoadData(path: string): Promise<LoadData> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the data file ${path}: ${(error as Error).message}`, { cause: error });
  }
  const fail = (what: string): never => {
    throw new Error(`data file ${path}: ${what}`);
  };
  if (typeof raw !== 'object' || raw === null) return fail('expected a JSON object');
  const d = raw as Record<string, unknown>;
  if (!Array.isArray(d.tasks) || d.tasks.length === 0 || !d.tasks.every((t) => typeof t === 'string' && t !== ''))
    fail('"tasks" must be a non-empty array of task names');
  if (!Array.isArray(d.tenants) || d.tenants.length === 0) fail('"tenants" must be a non-empty array');
  (d.tenants as unknown[]).forEach((t, i) => {
    const tenant = t as Record<string, unknown> | null;
    if (typeof tenant?.name !== 'string' || typeof tenant.key !== 'string')
      fail(`tenants[${i}] needs a string "name" and "key"`);
  });
  if (typeof d.adminKey !== 'string') fail('"adminKey" must be a string');
  if (typeof d.payload !== 'object' || d.payload === null) fail('"payload" must be an infer request body (an object)');
  return {
    description: typeof d.description === 'string' ? d.description : '',
    tasks: d.tasks as string[],
    tenants: d.tenants as LoadData['tenants'],
    adminKey: d.adminKey as string,
    payload: d.payload,
  };
}

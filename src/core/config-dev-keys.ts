/**
 * The public development keys of the quick start (`npm start` on a fresh clone). They are
 * printed in the README, so they protect nothing: the validator refuses their hashes unless
 * `devMode: true`, and the gateway warns loudly at start when it runs with them.
 */
import { sha256Hex } from './sha256.js';

export const DEV_TENANT_KEY = 'dev-key';
export const DEV_ADMIN_KEY = 'dev-admin-key';

export const DEV_KEY_HASHES: ReadonlyMap<string, string> = new Map([
  [sha256Hex(DEV_TENANT_KEY), DEV_TENANT_KEY],
  [sha256Hex(DEV_ADMIN_KEY), DEV_ADMIN_KEY],
]);

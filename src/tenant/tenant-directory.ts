/**
 * Who is calling: bearer key → tenant policy, and whether a key is the admin key. Keys are
 * compared as sha256 digests in constant time (`api-keys.ts`); neither keys nor digests appear
 * in errors or logs.
 */
import { DS_ERR_UNAUTHENTICATED } from '../core/errors.js';
import type { TenantConfig } from '../core/config-types.js';
import { SeededRng } from '../core/rng.js';
import { KeyRing, bearerToken } from './api-keys.js';
import { TenantPolicy } from './tenant-policy.js';

export interface TenantDirectoryOptions {
  readonly tenants: readonly TenantConfig[];
  readonly adminKeySha256: readonly string[];
  /** Seed of the split draws for requests without a routing id. */
  readonly seed: number;
}

export class TenantDirectory {
  private readonly tenantKeys: KeyRing<TenantPolicy>;
  private readonly adminKeys: KeyRing<true>;

  constructor(options: TenantDirectoryOptions) {
    const rng = new SeededRng(options.seed >>> 0);
    this.tenantKeys = new KeyRing(
      options.tenants.flatMap((config) => {
        const policy = new TenantPolicy(config, rng);
        return config.keySha256.map((hash) => [hash, policy] as const);
      }),
    );
    this.adminKeys = new KeyRing(options.adminKeySha256.map((hash) => [hash, true] as const));
  }

  /** The tenant of an `Authorization` header; throws DS_ERR_UNAUTHENTICATED (401). */
  authenticate(authorization: string | undefined): TenantPolicy {
    const key = bearerToken(authorization);
    if (key === null) {
      throw new DS_ERR_UNAUTHENTICATED(
        authorization === undefined
          ? 'send "Authorization: Bearer <api key>"'
          : 'the Authorization header is not "Bearer <api key>"',
      );
    }
    const tenant = this.tenantKeys.lookup(key);
    if (tenant === null) throw new DS_ERR_UNAUTHENTICATED('the API key is not valid');
    return tenant;
  }

  /** 'admin' for the admin key, 'other' for any other presented key, 'none' without one. */
  classify(authorization: string | undefined): 'admin' | 'other' | 'none' {
    const key = bearerToken(authorization);
    if (key === null) return 'none';
    return this.adminKeys.lookup(key) ? 'admin' : 'other';
  }
}

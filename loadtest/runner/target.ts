/**
 * Load tests aim at loopback unless told otherwise: a mistyped URL must not load someone
 * else's server. Every address the host name resolves to must be a loopback address.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export class TargetRefusedError extends Error {}

export function isLoopbackAddress(address: string): boolean {
  if (isIP(address) === 4) return address.startsWith('127.');
  if (isIP(address) === 6) return address === '::1' || /^::ffff:127\./i.test(address);
  return false;
}

/** Resolves the base URL's host; throws TargetRefusedError unless it is loopback or `allowRemote`. */
export async function checkTarget(baseUrl: string, allowRemote: boolean): Promise<URL> {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TargetRefusedError(`--base-url is not a URL: ${JSON.stringify(baseUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TargetRefusedError(`--base-url must be http(s), got ${url.protocol}`);
  if (allowRemote) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
  if (addresses.length === 0) throw new TargetRefusedError(`cannot resolve ${host}`);
  const remote = addresses.filter((a) => !isLoopbackAddress(a));
  if (remote.length > 0) {
    throw new TargetRefusedError(
      `refusing to load ${host} (${remote.join(', ')}): not a loopback address; pass --allow-remote if you mean it`,
    );
  }
  return url;
}

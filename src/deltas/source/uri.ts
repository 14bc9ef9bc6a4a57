/**
 * URI helpers shared by the sources: which scheme a URI uses, how it may appear in an error
 * message, and whether its host is on the allow-list.
 */
import { boundText } from '../../core/bounded-text.js';
import type { DeltaSourceScheme } from './delta-source.js';

const SCHEME = /^([a-zA-Z][a-zA-Z0-9+.-]*):/;

/**
 * The scheme of `uri`, lower-cased, or `file` for a plain path. A one-letter "scheme" is a
 * Windows drive letter, so it also counts as a path.
 */
export function schemeOf(uri: string): string {
  const match = SCHEME.exec(uri);
  if (match === null || match[1] === undefined || match[1].length === 1) return 'file';
  return match[1].toLowerCase();
}

export function isKnownScheme(scheme: string): scheme is DeltaSourceScheme {
  return scheme === 'file' || scheme === 'http' || scheme === 'https';
}

/**
 * `uri` as it may be shown to clients and logs: without userinfo and without the query string,
 * where presigned object-store URLs keep their credentials.
 */
export function redactUri(uri: string): string {
  // Bounded: a URI comes from a registry entry or an admin request, and errors and logs quote it.
  return boundText(redactUnbounded(uri), 300);
}

function redactUnbounded(uri: string): string {
  const scheme = schemeOf(uri);
  if (scheme !== 'http' && scheme !== 'https') return uri;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return uri.replace(/\?.*$/s, '?<redacted>').replace(/\/\/[^/@]*@/, '//<redacted>@');
  }
  const hadQuery = url.search !== '';
  const hadUser = url.username !== '' || url.password !== '';
  url.username = '';
  url.password = '';
  url.search = '';
  url.hash = '';
  let text = url.toString();
  if (hadUser) text = text.replace('://', '://<redacted>@');
  return hadQuery ? `${text}?<redacted>` : text;
}

/**
 * A host allow-list: exact names (`deltas.example.com`), subdomain wildcards (`*.example.com`
 * matches `a.example.com` and `a.b.example.com`, not `example.com` itself), or `*` for any host.
 * Names compare case-insensitively; ports are not part of the match.
 */
export class HostAllowList {
  private readonly exact: ReadonlySet<string>;
  private readonly suffixes: readonly string[];
  private readonly any: boolean;

  constructor(readonly patterns: readonly string[]) {
    const exact = new Set<string>();
    const suffixes: string[] = [];
    let any = false;
    for (const raw of patterns) {
      const pattern = raw.trim().toLowerCase();
      if (pattern === '*') any = true;
      else if (pattern.startsWith('*.')) suffixes.push(pattern.slice(1));
      else exact.add(pattern);
    }
    this.exact = exact;
    this.suffixes = suffixes;
    this.any = any;
  }

  /** `host` as `URL.hostname` gives it (IPv6 literals keep their brackets). */
  allows(host: string): boolean {
    if (this.any) return true;
    const name = host.toLowerCase().replace(/\.$/, '');
    if (this.exact.has(name)) return true;
    return this.suffixes.some((suffix) => name.endsWith(suffix) && name.length > suffix.length);
  }

  describe(): string {
    return this.patterns.length === 0 ? 'none' : this.patterns.join(', ');
  }
}

/** Checks one allow-list pattern; returns why it is malformed, or null. */
export function hostPatternProblem(pattern: string): string | null {
  const p = pattern.trim();
  if (p === '*') return null;
  const name = p.startsWith('*.') ? p.slice(2) : p;
  if (name === '' || name.includes('*') || name.includes('/') || (name.includes(':') && !name.startsWith('['))) {
    return `"${pattern}" is not a host name, "*.suffix" or "*"`;
  }
  return null;
}

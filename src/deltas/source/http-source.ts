/**
 * Fetches deltas over http(s) with undici.
 *
 * Each phase has its own bound, named after it as undici names them: `connectTimeoutMs` (TCP +
 * TLS), `headersTimeoutMs` (request sent → response headers), `bodyTimeoutMs` (longest silence
 * between two body chunks, not the whole transfer: a large delta on a slow link is fine as long
 * as it keeps moving). undici runs these timers on a coarse tick (about one second), so small
 * values are rounded up: they bound stalls, they are not precise deadlines. Two bounds cover
 * what those cannot see, a host that keeps the body moving one byte at a time: after
 * `rateGraceMs` of an attempt's body, its average rate must stay at or above
 * `minBytesPerSecond` (else the attempt fails, transiently); and `fetchTimeoutMs` bounds the
 * whole fetch, every attempt and backoff included (not retried: the time is spent).
 * `maxBytes` bounds memory: a Content-Length above it is refused before reading, a body without
 * one is cut as soon as it passes it.
 *
 * Trust: the host of every URI, and of every redirect target, is checked against `allowedHosts`
 * before any connection is made (the registry is configuration, but a delta URI must never turn
 * the gateway into a proxy to internal services). The addresses it connects to are checked too
 * (./address-policy.ts): an IP-literal host before the request, every DNS answer inside the
 * connection's lookup, so loopback, link-local, private, unspecified and multicast addresses are
 * refused (DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED, never retried) unless `allowPrivateAddresses` is set
 * or the address is listed as an IP literal in `allowedHosts`. Configured `headers` (e.g. a
 * bearer token) are only sent to the origin of the URI itself, never to a redirect target on
 * another origin.
 *
 * Retries: connection errors, timeouts, truncated bodies and 5xx answers are transient and are
 * retried `retries` times with jittered exponential backoff; 4xx answers, checksum mismatches
 * and size violations are not (retrying cannot change them). When the attempts run out the
 * error is DS_ERR_SOURCE_RETRIES_EXHAUSTED, whose `cause` is the last transient error (e.g.
 * DS_ERR_SOURCE_TRUNCATED, DS_ERR_SOURCE_TIMEOUT), so "what failed" and "we gave up" are both
 * visible.
 */
import { Agent, request } from 'undici';
import type { LookupFunction } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED,
  DS_ERR_SOURCE_BAD_URI,
  DS_ERR_SOURCE_CONNECTION,
  DS_ERR_SOURCE_HOST_NOT_ALLOWED,
  DS_ERR_SOURCE_HTTP_STATUS,
  DS_ERR_SOURCE_NOT_FOUND,
  DS_ERR_SOURCE_RETRIES_EXHAUSTED,
  DS_ERR_SOURCE_SCHEME_NOT_ALLOWED,
  DS_ERR_SOURCE_TIMEOUT,
  DS_ERR_SOURCE_TOO_LARGE,
  DS_ERR_SOURCE_TOO_MANY_REDIRECTS,
  DS_ERR_SOURCE_TRUNCATED,
  isDsError,
  isError,
} from '../../core/errors.js';
import { SeededRng } from '../../core/rng.js';
import type { DeltaSource, FetchStatus } from './delta-source.js';
import { StreamingSha256, normalizeSha256 } from './checksum.js';
import { concat } from './concat-bytes.js';
import { abortableSleep, backoffDelayMs } from './retry.js';
import { errorCode, errorMessage, withUri } from './source-error.js';
import { HostAllowList, redactUri } from './uri.js';
import { AddressPolicy, type AddressRefusal } from './address-policy.js';
import { checkHttpOptions, type CheckedHttpOptions } from './source-options.js';

export interface HttpDeltaSourceOptions {
  /** Hosts a delta may come from: exact names, `*.suffix`, or `*` for any. Default: none. */
  allowedHosts?: readonly string[];
  /** Default `['https']`. */
  allowedSchemes?: readonly ('http' | 'https')[];
  /** Largest body accepted, in bytes. Default 1 GiB. */
  maxBytes?: number;
  /** TCP (+TLS) connection setup, ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** From request sent to response headers received, ms. Default 10 000. */
  headersTimeoutMs?: number;
  /** Longest pause between two body chunks, ms. Default 10 000. */
  bodyTimeoutMs?: number;
  /** The whole fetch (every attempt, redirect and backoff), ms. Default 60 000. */
  fetchTimeoutMs?: number;
  /** Slowest average body rate accepted once `rateGraceMs` have passed, bytes/s (0 = any). Default 16 384. */
  minBytesPerSecond?: number;
  /** Body time before the rate is judged, ms. Default 5 000. */
  rateGraceMs?: number;
  /** Retries after the first attempt for transient failures. Default 2. */
  retries?: number;
  /** Backoff before the first retry (before jitter), ms. Default 200. */
  retryBaseDelayMs?: number;
  /** Cap on any backoff, ms. Default 5 000. */
  retryMaxDelayMs?: number;
  /** Redirects followed per attempt (each target is checked like the original URI). Default 3. */
  maxRedirects?: number;
  /** Extra request headers, sent to the URI's own origin only (e.g. `authorization`). */
  headers?: Readonly<Record<string, string>>;
  /**
   * Connect to loopback, link-local, private, unspecified, multicast and reserved addresses too.
   * Default false: such addresses are refused unless listed as IP literals in `allowedHosts`.
   */
  allowPrivateAddresses?: boolean;
  /** DNS lookup used for connections (its answers are still checked against the address policy). */
  lookup?: LookupFunction;
  /** Seed of the backoff jitter. Default 0. */
  seed?: number;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const TRANSIENT = [DS_ERR_SOURCE_TIMEOUT, DS_ERR_SOURCE_CONNECTION, DS_ERR_SOURCE_TRUNCATED];

export class HttpDeltaSource implements DeltaSource {
  private readonly options: CheckedHttpOptions;
  private readonly hosts: HostAllowList;
  private readonly addresses: AddressPolicy;
  private readonly agent: Agent;
  private readonly rng: SeededRng;

  constructor(options: HttpDeltaSourceOptions = {}) {
    this.options = checkHttpOptions(options);
    this.hosts = new HostAllowList(this.options.allowedHosts);
    this.addresses = new AddressPolicy({
      allowPrivateAddresses: this.options.allowPrivateAddresses,
      allowedAddresses: this.options.allowedHosts,
    });
    this.rng = new SeededRng(this.options.seed);
    this.agent = new Agent({
      connect: {
        timeout: this.options.connectTimeoutMs,
        // The refusal is re-worded with the URI in transportError (a lookup only knows the host).
        lookup: this.addresses.guardLookup(this.options.lookup, (hostname, refusal) =>
          addressError(hostname, hostname, refusal),
        ),
      },
      headersTimeout: this.options.headersTimeoutMs,
      bodyTimeout: this.options.bodyTimeoutMs,
    });
  }

  async fetch(
    uri: string,
    expectedSha256: string,
    callerSignal?: AbortSignal,
    status?: FetchStatus,
  ): Promise<Uint8Array> {
    const started = performance.now();
    const expected = normalizeSha256(uri, expectedSha256);
    const url = this.checkedUrl(uri, uri);
    const deadline = AbortSignal.timeout(this.options.fetchTimeoutMs);
    const signal = callerSignal === undefined ? deadline : AbortSignal.any([callerSignal, deadline]);
    try {
      return await this.fetchWithRetries(uri, url, expected, signal, started, status);
    } catch (error) {
      if (deadline.aborted && !callerSignal?.aborted) {
        throw withUri(
          new DS_ERR_SOURCE_TIMEOUT(
            redactUri(uri),
            `the whole fetch took longer than ${this.options.fetchTimeoutMs} ms`,
            { cause: error },
          ),
          uri,
        );
      }
      throw error;
    }
  }

  private async fetchWithRetries(
    uri: string,
    url: URL,
    expected: string,
    signal: AbortSignal,
    started: number,
    status?: FetchStatus,
  ): Promise<Uint8Array> {
    const attempts = this.options.retries + 1;
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await abortableSleep(backoffDelayMs(attempt - 1, this.backoff(), this.rng), signal);
      try {
        const result = await this.attempt(uri, url, expected, signal);
        if (status !== undefined) {
          status.attempts = attempt;
          status.bytes = result.bytes.byteLength;
          status.verifyMs = result.hashMs;
          status.transferMs = performance.now() - started - result.hashMs;
          status.finalUri = redactUri(result.finalUrl);
        }
        return result.bytes;
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (!isTransient(error)) throw error;
        lastError = error as Error;
      }
    }
    const reason = lastError?.message ?? 'unknown error';
    const exhausted = withUri(new DS_ERR_SOURCE_RETRIES_EXHAUSTED(redactUri(uri), attempts, reason), uri);
    exhausted.cause = lastError;
    throw exhausted;
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private backoff(): { baseDelayMs: number; maxDelayMs: number } {
    return { baseDelayMs: this.options.retryBaseDelayMs, maxDelayMs: this.options.retryMaxDelayMs };
  }

  /** Parses `target` and refuses it, before any network traffic, unless scheme and host are allowed. */
  private checkedUrl(uri: string, target: string | URL): URL {
    let url: URL;
    try {
      url = typeof target === 'string' ? new URL(target) : target;
    } catch (error) {
      throw withUri(new DS_ERR_SOURCE_BAD_URI(redactUri(uri), errorMessage(error)), uri);
    }
    const scheme = url.protocol.slice(0, -1);
    if (!(this.options.allowedSchemes as readonly string[]).includes(scheme)) {
      const shown = redactUri(url.toString());
      throw withUri(new DS_ERR_SOURCE_SCHEME_NOT_ALLOWED(shown, scheme, this.options.allowedSchemes.join(', ')), uri);
    }
    if (!this.hosts.allows(url.hostname)) {
      throw withUri(
        new DS_ERR_SOURCE_HOST_NOT_ALLOWED(redactUri(url.toString()), url.hostname, this.hosts.describe()),
        uri,
      );
    }
    // An IP-literal host is connected to without a DNS lookup, so the lookup guard never sees it.
    const refusal = this.addresses.refusal(url.hostname);
    if (refusal !== null) throw withUri(addressError(redactUri(uri), url.hostname, refusal), uri);
    return url;
  }

  /** One attempt, redirects included; aborted early when its body moves slower than the minimum rate. */
  private async attempt(
    uri: string,
    start: URL,
    expected: string,
    fetchSignal: AbortSignal,
  ): Promise<{ bytes: Uint8Array; hashMs: number; finalUrl: string }> {
    const tooSlow = new AbortController();
    const signal = AbortSignal.any([fetchSignal, tooSlow.signal]);
    try {
      return await this.attemptUntilBody(uri, start, expected, signal, tooSlow);
    } catch (error) {
      if (tooSlow.signal.aborted && !fetchSignal.aborted) throw withUri(tooSlow.signal.reason as Error, uri);
      throw error;
    }
  }

  private async attemptUntilBody(
    uri: string,
    start: URL,
    expected: string,
    signal: AbortSignal,
    tooSlow: AbortController,
  ): Promise<{ bytes: Uint8Array; hashMs: number; finalUrl: string }> {
    let url = start;
    for (let redirects = 0; ; redirects++) {
      let response: Awaited<ReturnType<typeof request>>;
      try {
        response = await request(url, {
          dispatcher: this.agent,
          method: 'GET',
          headers: url.origin === start.origin ? { ...this.options.headers } : {},
          signal,
        });
      } catch (error) {
        throw this.transportError(uri, error, signal);
      }
      const { statusCode, headers, body } = response;
      // Destroying an undici body emits 'error' (RequestAbortedError): without a listener that
      // would be an uncaught exception. Errors that matter surface through iteration instead.
      body.on('error', ignore);
      if (REDIRECT_STATUSES.has(statusCode)) {
        discard(body);
        const location = single(headers.location);
        if (location === undefined)
          throw httpStatusError(uri, `${statusCode} (redirect without a Location header)`, statusCode);
        if (redirects >= this.options.maxRedirects) {
          throw withUri(new DS_ERR_SOURCE_TOO_MANY_REDIRECTS(redactUri(uri), this.options.maxRedirects), uri);
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch (error) {
          throw withUri(
            new DS_ERR_SOURCE_BAD_URI(
              redactUri(location),
              `redirect target from ${redactUri(url.toString())}: ${errorMessage(error)}`,
            ),
            uri,
          );
        }
        url = this.checkedUrl(uri, next);
        continue;
      }
      if (statusCode === 404 || statusCode === 410) {
        discard(body);
        throw withUri(new DS_ERR_SOURCE_NOT_FOUND(redactUri(uri), statusCode), uri);
      }
      if (statusCode < 200 || statusCode > 299) {
        discard(body);
        throw httpStatusError(uri, String(statusCode), statusCode);
      }
      const declared = contentLength(headers['content-length']);
      const { bytes, hashMs } = await this.readBody(uri, body, declared, expected, signal, tooSlow);
      return { bytes, hashMs, finalUrl: url.toString() };
    }
  }

  private async readBody(
    uri: string,
    body: AsyncIterable<Buffer> & { destroy(): unknown },
    declared: number | undefined,
    expected: string,
    signal: AbortSignal,
    tooSlow: AbortController,
  ): Promise<{ bytes: Uint8Array; hashMs: number }> {
    const { maxBytes, minBytesPerSecond, rateGraceMs } = this.options;
    if (declared !== undefined && declared > maxBytes) {
      body.destroy();
      throw withUri(new DS_ERR_SOURCE_TOO_LARGE(redactUri(uri), maxBytes, `Content-Length is ${declared}`), uri);
    }
    const hash = new StreamingSha256();
    // With a Content-Length the body goes straight into one buffer: collecting chunks and
    // concatenating them allocates the delta twice, in fragments (see file-source.ts).
    const target = declared !== undefined ? new Uint8Array(declared) : null;
    const chunks: Uint8Array[] = [];
    let received = 0;
    const bodyStarted = performance.now();
    // Judged on a timer, not per chunk: a body that stops moving altogether is slow too.
    const rateCheck =
      minBytesPerSecond === 0
        ? undefined
        : setInterval(
            () => {
              const seconds = (performance.now() - bodyStarted) / 1000;
              if (seconds * 1000 < rateGraceMs || received / seconds >= minBytesPerSecond) return;
              const rate = `${Math.round(received / seconds)} bytes/s after ${seconds.toFixed(1)} s`;
              tooSlow.abort(
                new DS_ERR_SOURCE_TIMEOUT(
                  redactUri(uri),
                  `the body arrived at ${rate}, below the minimum of ${minBytesPerSecond} bytes/s`,
                ),
              );
            },
            Math.min(1000, Math.max(50, rateGraceMs / 4)),
          );
    rateCheck?.unref();
    try {
      for await (const chunk of body) {
        if (received + chunk.byteLength > maxBytes) {
          throw withUri(
            new DS_ERR_SOURCE_TOO_LARGE(redactUri(uri), maxBytes, `the body passed it while streaming`),
            uri,
          );
        }
        if (target && received + chunk.byteLength > target.length) {
          throw withUri(
            new DS_ERR_SOURCE_TOO_LARGE(
              redactUri(uri),
              maxBytes,
              `the body is longer than its Content-Length ${declared}`,
            ),
            uri,
          );
        }
        hash.update(chunk);
        if (target) target.set(chunk, received);
        else chunks.push(chunk);
        received += chunk.byteLength;
      }
    } catch (error) {
      body.destroy();
      if (isDsError(error)) throw error;
      if (signal?.aborted) throw signal.reason;
      const code = errorCode(error);
      if (declared !== undefined && received < declared && code !== 'UND_ERR_BODY_TIMEOUT') {
        throw truncatedError(uri, received, declared, error);
      }
      throw this.transportError(uri, error, signal);
    } finally {
      clearInterval(rateCheck);
    }
    if (declared !== undefined && received !== declared) throw truncatedError(uri, received, declared, undefined);
    hash.verify(uri, expected);
    return { bytes: target ?? concat(chunks, received), hashMs: hash.elapsedMs };
  }

  /** Maps an undici / socket error to a typed, transient source error (or the abort reason). */
  private transportError(uri: string, error: unknown, signal?: AbortSignal): unknown {
    if (signal?.aborted) return signal.reason;
    // The address guard's refusal comes back through the connection: it is ours, final, not transient.
    if (isError(error, DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED)) {
      const { host, refusal } = error as typeof error & { host: string; refusal: AddressRefusal };
      return withUri(addressError(redactUri(uri), host, refusal), uri);
    }
    const shown = redactUri(uri);
    const cause = { cause: error };
    switch (errorCode(error)) {
      case 'UND_ERR_CONNECT_TIMEOUT':
        return withUri(
          new DS_ERR_SOURCE_TIMEOUT(shown, `no connection within ${this.options.connectTimeoutMs} ms`, cause),
          uri,
        );
      case 'UND_ERR_HEADERS_TIMEOUT':
        return withUri(
          new DS_ERR_SOURCE_TIMEOUT(shown, `no response headers within ${this.options.headersTimeoutMs} ms`, cause),
          uri,
        );
      case 'UND_ERR_BODY_TIMEOUT':
        return withUri(
          new DS_ERR_SOURCE_TIMEOUT(shown, `the body stalled for more than ${this.options.bodyTimeoutMs} ms`, cause),
          uri,
        );
      default: {
        const code = errorCode(error);
        return withUri(
          new DS_ERR_SOURCE_CONNECTION(shown, `${code === undefined ? '' : `${code}: `}${errorMessage(error)}`, cause),
          uri,
        );
      }
    }
  }
}

function isTransient(error: unknown): boolean {
  if (TRANSIENT.some((kind) => isError(error, kind))) return true;
  if (isError(error, DS_ERR_SOURCE_HTTP_STATUS)) return ((error as { httpStatus?: number }).httpStatus ?? 0) >= 500;
  return false;
}

function httpStatusError(uri: string, shownStatus: string, httpStatus: number): Error {
  return Object.assign(withUri(new DS_ERR_SOURCE_HTTP_STATUS(redactUri(uri), shownStatus), uri), { httpStatus });
}

function truncatedError(uri: string, received: number, declared: number, cause: unknown): Error {
  const error = withUri(new DS_ERR_SOURCE_TRUNCATED(redactUri(uri), received, declared), uri);
  if (cause !== undefined) error.cause = cause;
  return error;
}

function addressError(shownUri: string, host: string, refusal: AddressRefusal): Error {
  const where = host.replace(/^\[|\]$/g, '') === refusal.address ? host : `${host} (${refusal.address})`;
  return Object.assign(new DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED(shownUri, where, refusal.kind), { host, refusal });
}

function ignore(): void {}

/** Drains a small error body in the background so the connection can be reused (or closes it). */
function discard(body: { dump(options?: { limit: number }): Promise<unknown> }): void {
  body.dump({ limit: 64 * 1024 }).catch(ignore);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function contentLength(value: string | string[] | undefined): number | undefined {
  const text = single(value);
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  return Number(text);
}

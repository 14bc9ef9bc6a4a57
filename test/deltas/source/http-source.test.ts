import { test, after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo, LookupFunction } from 'node:net';
import { HttpDeltaSource, type HttpDeltaSourceOptions } from '../../../src/deltas/source/http-source.js';
import type { FetchStatus } from '../../../src/deltas/source/delta-source.js';
import { hasCode } from '../../helpers/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse, count: number) => void;

const payload = new Uint8Array(4096).map((_, i) => (i * 31) % 251);
const payloadSha = sha256(payload);
const routes = new Map<string, Handler>();
const hits = new Map<string, number>();
let server: Server;
let base: string;
const sources: HttpDeltaSource[] = [];

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Registers a handler under a fresh path and returns its URL. */
function route(name: string, handler: Handler): string {
  routes.set(`/${name}`, handler);
  return `${base}/${name}`;
}

function hitCount(name: string): number {
  return hits.get(`/${name}`) ?? 0;
}

/**
 * The test server is on loopback, which the SSRF policy refuses by default; listing the literal
 * `127.0.0.1` in allowedHosts is the explicit allowance of that one address (names that resolve
 * to it, and other loopback addresses, stay refused: test/reliability/security.test.ts).
 */
function source(options: HttpDeltaSourceOptions = {}): HttpDeltaSource {
  const s = new HttpDeltaSource({
    allowedHosts: ['127.0.0.1'],
    allowedSchemes: ['http'],
    connectTimeoutMs: 300,
    headersTimeoutMs: 300,
    bodyTimeoutMs: 300,
    retries: 0,
    retryBaseDelayMs: 1,
    retryMaxDelayMs: 5,
    ...options,
  });
  sources.push(s);
  return s;
}

function serve(res: ServerResponse, bytes: Uint8Array): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.byteLength });
  res.end(bytes);
}

function causeCode(error: { cause?: unknown }): string | undefined {
  return (error.cause as { code?: string } | undefined)?.code;
}

before(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const count = (hits.get(path) ?? 0) + 1;
    hits.set(path, count);
    const handler = routes.get(path);
    if (handler === undefined) {
      res.writeHead(500).end('no route');
      return;
    }
    handler(req, res, count);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await Promise.all(sources.map((s) => s.close()));
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test('fetches the bytes, verifies them and reports the status', async () => {
  const url = route('ok', (_req, res) => serve(res, payload));
  const status: FetchStatus = {};
  const bytes = await source().fetch(url, payloadSha.toUpperCase(), undefined, status);
  assert.deepEqual(bytes, payload);
  assert.equal(bytes.constructor, Uint8Array);
  assert.equal(status.attempts, 1);
  assert.equal(status.bytes, payload.byteLength);
  assert.equal(typeof status.verifyMs, 'number');
  assert.equal(status.finalUri, url);
});

// undici runs its phase timers on a ~1 s tick, so each timeout takes about a second whatever
// the setting: these run concurrently to keep the file fast.
describe('phase timeouts', { concurrency: true }, () => {
  test('a server that never sends headers times out, is retried, then fails', async () => {
    const url = route('stall-headers', () => {
      /* never answers */
    });
    await assert.rejects(
      source({ headersTimeoutMs: 100, retries: 1 }).fetch(url, payloadSha),
      hasCode('DS_ERR_SOURCE_RETRIES_EXHAUSTED', (e) => {
        assert.equal(causeCode(e), 'DS_ERR_SOURCE_TIMEOUT');
        assert.match(e.message, /after 2 attempts/);
        assert.match(e.message, /no response headers within 100 ms/);
        assert.equal(e.uri, url);
      }),
    );
    assert.equal(hitCount('stall-headers'), 2);
  });

  test('a stalled first attempt is retried and the second one succeeds', async () => {
    const url = route('stall-once', (_req, res, count) => {
      if (count > 1) serve(res, payload);
    });
    const status: FetchStatus = {};
    const bytes = await source({ headersTimeoutMs: 100, retries: 2 }).fetch(url, payloadSha, undefined, status);
    assert.deepEqual(bytes, payload);
    assert.equal(status.attempts, 2);
  });

  test('a body that stalls midway times out as a body timeout', async () => {
    const url = route('stall-body', (_req, res) => {
      res.writeHead(200, { 'content-length': payload.byteLength });
      res.write(payload.subarray(0, 100));
    });
    await assert.rejects(
      source({ bodyTimeoutMs: 100, retries: 1 }).fetch(url, payloadSha),
      hasCode('DS_ERR_SOURCE_RETRIES_EXHAUSTED', (e) => {
        assert.equal(causeCode(e), 'DS_ERR_SOURCE_TIMEOUT');
        assert.match(e.message, /body stalled/);
      }),
    );
    assert.equal(hitCount('stall-body'), 2);
  });

  test('a connection that never establishes times out (connect phase)', async () => {
    let lookups = 0;
    // A DNS answer that never comes keeps the socket from connecting, without any traffic.
    const neverAnswers: LookupFunction = () => {
      lookups++;
    };
    const s = source({ allowedHosts: ['stall.test'], connectTimeoutMs: 100, retries: 1, lookup: neverAnswers });
    await assert.rejects(
      s.fetch('http://stall.test/delta', payloadSha),
      hasCode('DS_ERR_SOURCE_RETRIES_EXHAUSTED', (e) => {
        assert.equal(causeCode(e), 'DS_ERR_SOURCE_TIMEOUT');
        assert.match(e.message, /no connection within 100 ms/);
      }),
    );
    assert.equal(lookups, 2);
  });
});

describe('slow hosts: minimum rate and the whole-fetch deadline', { concurrency: true }, () => {
  test('a drip-feeding host (1 byte every 100 ms, never silent long enough for bodyTimeout) is cut by the minimum rate', async () => {
    const timers: NodeJS.Timeout[] = [];
    const url = route('drip', (_req, res) => {
      res.writeHead(200, { 'content-length': payload.byteLength });
      let sent = 0;
      const timer = setInterval(
        () => (sent < payload.byteLength ? res.write(payload.subarray(sent, ++sent)) : res.end()),
        100,
      );
      timers.push(timer);
      res.on('close', () => clearInterval(timer));
    });
    const started = performance.now();
    await assert.rejects(
      source({ bodyTimeoutMs: 5_000, minBytesPerSecond: 1000, rateGraceMs: 300, retries: 1 }).fetch(url, payloadSha),
      hasCode('DS_ERR_SOURCE_RETRIES_EXHAUSTED', (e) => {
        assert.equal(causeCode(e), 'DS_ERR_SOURCE_TIMEOUT');
        assert.match(e.message, /below the minimum of 1000 bytes\/s/);
      }),
    );
    timers.forEach(clearInterval);
    assert.equal(hitCount('drip'), 2, 'the slow attempt is retried once, then given up');
    // Bounded by rateGraceMs (+ a check tick) per attempt, not by the 41 s the drip would take.
    assert.ok(performance.now() - started < 10_000);
  });

  test('the whole fetch, retries and backoff included, ends at fetchTimeoutMs and is not retried further', async () => {
    const url = route('stall-forever', () => {
      /* headers never come */
    });
    await assert.rejects(
      source({ headersTimeoutMs: 60_000, retries: 5, fetchTimeoutMs: 400 }).fetch(url, payloadSha),
      hasCode('DS_ERR_SOURCE_TIMEOUT', (e) => {
        assert.match(e.message, /the whole fetch took longer than 400 ms/);
        assert.equal(e.uri, url);
      }),
    );
    assert.equal(hitCount('stall-forever'), 1);
  });

  test('a caller abort still wins over the deadline and keeps its own reason', async () => {
    const url = route('stall-abort', () => {});
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    setTimeout(() => controller.abort(reason), 50);
    await assert.rejects(
      source({ headersTimeoutMs: 60_000, fetchTimeoutMs: 5_000 }).fetch(url, payloadSha, controller.signal),
      (e) => e === reason,
    );
  });
});

test('a 503 is retried and the retry succeeds', async () => {
  const url = route('503-once', (_req, res, count) => {
    if (count === 1) res.writeHead(503).end('busy');
    else serve(res, payload);
  });
  const status: FetchStatus = {};
  assert.deepEqual(await source({ retries: 2 }).fetch(url, payloadSha, undefined, status), payload);
  assert.equal(status.attempts, 2);
  assert.equal(hitCount('503-once'), 2);
});

test('5xx on every attempt exhausts the retries', async () => {
  const url = route('500-always', (_req, res) => res.writeHead(500).end());
  await assert.rejects(
    source({ retries: 2 }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_RETRIES_EXHAUSTED', (e) => {
      assert.equal(causeCode(e), 'DS_ERR_SOURCE_HTTP_STATUS');
      assert.match(e.message, /after 3 attempts/);
    }),
  );
  assert.equal(hitCount('500-always'), 3);
});

test('a 404 is not retried', async () => {
  const url = route('missing', (_req, res) => res.writeHead(404).end());
  await assert.rejects(
    source({ retries: 3 }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_NOT_FOUND', (e) => {
      assert.match(e.message, /HTTP 404/);
      assert.equal(e.uri, url);
    }),
  );
  assert.equal(hitCount('missing'), 1);
});

test('other 4xx answers are not retried either', async () => {
  const url = route('forbidden', (_req, res) => res.writeHead(403).end());
  await assert.rejects(
    source({ retries: 3 }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_HTTP_STATUS', (e) => assert.match(e.message, /403/)),
  );
  assert.equal(hitCount('forbidden'), 1);
});

test('a body shorter than its Content-Length is reported as truncated', async () => {
  const url = route('truncated', (req, res) => {
    res.writeHead(200, { 'content-length': 1000 });
    res.write(payload.subarray(0, 500), () => req.socket.destroy());
  });
  await assert.rejects(
    source({ retries: 1 }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_RETRIES_EXHAUSTED', (e) => {
      assert.equal(causeCode(e), 'DS_ERR_SOURCE_TRUNCATED');
      assert.match((e.cause as Error).message, /received 500 of 1000 bytes/);
    }),
  );
  assert.equal(hitCount('truncated'), 2);
});

test('a Content-Length above maxBytes is refused before reading, without retry', async () => {
  const url = route('too-large-declared', (_req, res) => serve(res, payload));
  await assert.rejects(
    source({ maxBytes: 1000, retries: 2 }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_TOO_LARGE', (e) => assert.match(e.message, /limit of 1000 bytes: Content-Length is 4096/)),
  );
  assert.equal(hitCount('too-large-declared'), 1);
});

test('a chunked body without length is cut as soon as it passes maxBytes', async () => {
  let written = 0;
  const url = route('too-large-chunked', (_req, res) => {
    res.writeHead(200, { 'transfer-encoding': 'chunked' });
    const timer = setInterval(() => {
      if (res.destroyed || written > 1_000_000) {
        clearInterval(timer);
        res.destroy();
        return;
      }
      written += 512;
      res.write(payload.subarray(0, 512));
    }, 1);
  });
  await assert.rejects(
    source({ maxBytes: 2000 }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_TOO_LARGE', (e) => assert.match(e.message, /passed it while streaming/)),
  );
  assert.ok(written < 1_000_000, 'the server was stopped long before the end');
});

test('a host outside the allow-list is refused before any network traffic', async () => {
  let lookups = 0;
  const countingLookup: LookupFunction = (_hostname, options, callback) => {
    lookups++;
    if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
  };
  const before = hits.size;
  const port = (server.address() as AddressInfo).port;
  await assert.rejects(
    source({ lookup: countingLookup, retries: 2 }).fetch(`http://example.invalid:${port}/ok`, payloadSha),
    hasCode('DS_ERR_SOURCE_HOST_NOT_ALLOWED', (e) => assert.match(e.message, /example\.invalid.*127\.0\.0\.1/)),
  );
  assert.equal(lookups, 0);
  assert.equal(hits.size, before);
});

test('a scheme outside the allow-list is refused', async () => {
  await assert.rejects(
    source({ allowedSchemes: ['https'] }).fetch(`${base}/ok`, payloadSha),
    hasCode('DS_ERR_SOURCE_SCHEME_NOT_ALLOWED'),
  );
});

test('a checksum mismatch is refused and not retried', async () => {
  const url = route('corrupt', (_req, res) =>
    serve(
      res,
      payload.map((b) => b ^ 1),
    ),
  );
  const wrong = sha256(payload.map((b) => b ^ 1));
  await assert.rejects(
    source({ retries: 2 }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_CHECKSUM_MISMATCH', (e) => {
      assert.ok(e.message.includes(wrong) && e.message.includes(payloadSha), e.message);
    }),
  );
  assert.equal(hitCount('corrupt'), 1);
});

test('a malformed expected sha256 is refused before fetching', async () => {
  const url = route('never-hit', (_req, res) => serve(res, payload));
  await assert.rejects(source().fetch(url, 'abc'), hasCode('DS_ERR_SOURCE_BAD_SHA256'));
  assert.equal(hitCount('never-hit'), 0);
});

test('redirects are followed, and each target host is checked', async () => {
  const target = route('redirect-target', (_req, res) => serve(res, payload));
  const url = route('redirect', (_req, res) => res.writeHead(302, { location: '/redirect-target' }).end());
  assert.deepEqual(await source().fetch(url, payloadSha), payload);
  assert.equal(hitCount('redirect-target'), 1);

  const away = route('redirect-away', (_req, res) =>
    res.writeHead(307, { location: 'http://internal.invalid/secret' }).end(),
  );
  await assert.rejects(
    source().fetch(away, payloadSha),
    hasCode('DS_ERR_SOURCE_HOST_NOT_ALLOWED', (e) => assert.match(e.message, /internal\.invalid/)),
  );
  assert.ok(target.endsWith('/redirect-target'));
});

test('configured headers go to the URI origin only, never to a redirect on another origin', async () => {
  const seen: (string | undefined)[] = [];
  const toLocalhost: LookupFunction = (_hostname, options, callback) => {
    if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
  };
  const port = (server.address() as AddressInfo).port;
  route('auth-target', (req, res) => {
    seen.push(req.headers.authorization);
    serve(res, payload);
  });
  const url = route('auth-redirect', (req, res) => {
    seen.push(req.headers.authorization);
    res.writeHead(302, { location: `http://other.test:${port}/auth-target` }).end();
  });
  const s = source({
    allowedHosts: ['127.0.0.1', 'other.test'],
    headers: { authorization: 'Bearer t0ken' },
    lookup: toLocalhost,
  });
  assert.deepEqual(await s.fetch(url, payloadSha), payload);
  assert.deepEqual(seen, ['Bearer t0ken', undefined]);
});

test('aborting the signal stops the fetch with its reason and does not retry', async () => {
  let arrived!: () => void;
  const requested = new Promise<void>((resolve) => (arrived = resolve));
  const url = route('abort', () => arrived()); // never answers
  const controller = new AbortController();
  const pending = source({ retries: 3, headersTimeoutMs: 5_000 }).fetch(url, payloadSha, controller.signal);
  await requested; // abort a request in flight (a fixed delay can fire before it arrives on a loaded machine)
  controller.abort(new Error('client went away'));
  await assert.rejects(pending, /client went away/);
  assert.equal(hitCount('abort'), 1);
});

test('credentials in the URI never reach error messages', async () => {
  const url = route('secret', (_req, res) => res.writeHead(403).end());
  const withSecrets = url.replace('http://', 'http://user:pa55@') + '?X-Amz-Signature=s3cr3t';
  await assert.rejects(
    source().fetch(withSecrets, payloadSha),
    hasCode('DS_ERR_SOURCE_HTTP_STATUS', (e) => {
      assert.doesNotMatch(e.message, /pa55|s3cr3t/);
      assert.doesNotMatch(e.uri ?? '', /pa55|s3cr3t/);
    }),
  );
});

test('without the literal in allowedHosts, the same loopback fetch is refused before any request', async () => {
  const url = route('unlisted', (_req, res) => serve(res, payload));
  await assert.rejects(
    source({ allowedHosts: ['*'] }).fetch(url, payloadSha),
    hasCode('DS_ERR_SOURCE_ADDRESS_NOT_ALLOWED', (e) => assert.match(e.message, /loopback/)),
  );
  assert.equal(hitCount('unlisted'), 0);
  assert.deepEqual(await source({ allowedHosts: ['*'], allowPrivateAddresses: true }).fetch(url, payloadSha), payload);
});

test('bad options are refused when the source is built', () => {
  assert.throws(
    () => new HttpDeltaSource({ connectTimeoutMs: 0 }),
    hasCode('DS_ERR_SOURCE_BAD_OPTION', (e) => assert.match(e.message, /connectTimeoutMs/)),
  );
  assert.throws(() => new HttpDeltaSource({ allowedHosts: ['a/b'] }), hasCode('DS_ERR_SOURCE_BAD_OPTION'));
  assert.throws(() => new HttpDeltaSource({ retries: -1 }), hasCode('DS_ERR_SOURCE_BAD_OPTION'));
  assert.throws(
    () => new HttpDeltaSource({ allowPrivateAddresses: 'yes' as unknown as boolean }),
    hasCode('DS_ERR_SOURCE_BAD_OPTION', (e) => assert.match(e.message, /allowPrivateAddresses/)),
  );
});

/**
 * SIGTERM under load (issue 22, defect 12): a burst of requests, each on its own connection and
 * all written before the signal, then SIGTERM to a real gateway process while most are still
 * unanswered. Every request must get a complete answer: 200 (accepted before the signal, finished
 * within shutdownGraceMs) or 503 DS_ERR_SHUTTING_DOWN with `Connection: close`; none may see its
 * connection reset or closed without an answer. Repeated, because the failure was intermittent
 * (237 of 402 reset in one run, then 0, 47, 3). DELTASERVE_SHUTDOWN_RUNS changes the count.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { DEV_TENANT_KEY } from '../../src/core/config-dev-keys.js';
import { until } from '../helpers/until.js';
import { INFER_BODY, startGateway } from './gateway-process.js';

const RUNS = Number(process.env.DELTASERVE_SHUTDOWN_RUNS ?? 3);
const BURST = 300;

interface Answer {
  readonly status: number;
  readonly connection: string | undefined;
  readonly body: string;
}

/** One request on its own connection (no agent, no reuse); resolves once it has been written. */
function send(url: string): { written: Promise<void>; answer: Promise<Answer> } {
  let written!: () => void;
  const writtenPromise = new Promise<void>((resolve) => (written = resolve));
  const answer = new Promise<Answer>((resolve, reject) => {
    const request = http.request(
      `${url}/v2/models/footwear/infer`,
      {
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${DEV_TENANT_KEY}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(INFER_BODY),
        },
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode!, connection: response.headers.connection, body }),
        );
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.on('finish', () => written());
    request.end(INFER_BODY);
  });
  return { written: writtenPromise, answer };
}

for (let run = 1; run <= RUNS; run++) {
  test(
    `SIGTERM mid-burst, run ${run} of ${RUNS}: every request sent gets 200 or 503 with Connection: close`,
    { timeout: 120_000 },
    async (t) => {
      const gateway = await startGateway({ shutdownGraceMs: 20_000 });
      try {
        const requests = Array.from({ length: BURST }, () => send(gateway.url));
        let answered = 0;
        const outcomes = requests.map((r) =>
          r.answer.then(
            (a) => {
              answered++;
              return a;
            },
            (error: Error & { code?: string }) => {
              answered++;
              return error;
            },
          ),
        );
        await Promise.all(requests.map((r) => r.written));
        await until(() => answered >= 3, 'the first answers', 60_000);
        const answeredAtSignal = answered;
        gateway.child.kill('SIGTERM');
        const results = await Promise.all(outcomes);
        const failures = results.filter((r): r is Error & { code?: string } => r instanceof Error);
        const statuses = new Map<number, number>();
        for (const r of results) if (!(r instanceof Error)) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        t.diagnostic(
          `${answeredAtSignal} answered before SIGTERM; statuses ${[...statuses].map(([s, n]) => `${s}×${n}`).join(' ')}; failures ${failures.length} (${[...new Set(failures.map((f) => f.code ?? f.message))].join(', ')})`,
        );
        assert.equal(failures.length, 0, `${failures.length} of ${BURST} requests got no answer`);
        for (const r of results as Answer[]) {
          assert.ok(r.status === 200 || r.status === 503, `status ${r.status}: ${r.body.slice(0, 200)}`);
          const parsed = JSON.parse(r.body) as { code?: string; outputs?: unknown };
          if (r.status === 503) {
            // A burst above the task's queue bound (256) is shed too: also a complete answer.
            assert.ok(parsed.code === 'DS_ERR_SHUTTING_DOWN' || parsed.code === 'DS_ERR_OVERLOADED', r.body);
            if (parsed.code === 'DS_ERR_SHUTTING_DOWN') assert.equal(r.connection, 'close');
          } else {
            assert.ok(Array.isArray(parsed.outputs), 'a complete 200 answer');
          }
        }
        await until(() => gateway.exited() !== null, 'the gateway to exit', 30_000);
        assert.equal(gateway.exited(), '0', gateway.stderr());
      } finally {
        await gateway.stop();
      }
    },
  );
}

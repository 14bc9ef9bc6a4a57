/**
 * Answers a client does not read must not pile up in memory (issue 22, defect 7: eight clients
 * that never read their answers took the process to 3.1 GiB and liveness stopped answering).
 *
 * Node already applies back-pressure within one connection (it stops reading pipelined requests
 * while an answer waits to be flushed), and the answers themselves are bounded (rows per
 * request, each output once). What is left is many connections each holding an answer their
 * client never reads. Two bounds, counted from when an answer is handed to Node until it has
 * all been handed to the operating system (`finish`):
 *
 * - `sendTimeoutMs`: an answer not flushed by then loses its connection (a stalled reader);
 * - `maxUnsentBytes`: answers not yet flushed, all connections together; past it, the oldest
 *   lose their connections until the total fits again (the newest answer is kept).
 */
import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

export interface SendBounds {
  readonly sendTimeoutMs: number;
  readonly maxUnsentBytes: number;
}

/** Answers handed to Node and not yet flushed, oldest first. */
export class UnsentAnswers {
  private readonly pending = new Map<ServerResponse, number>();
  private bytes = 0;

  constructor(
    private readonly bounds: SendBounds,
    private readonly log: FastifyBaseLogger,
  ) {}

  /** Bytes of answers not yet flushed. */
  get unsentBytes(): number {
    return this.bytes;
  }

  track(response: ServerResponse, bytes: number): void {
    if (response.writableFinished || this.pending.has(response)) return;
    this.pending.set(response, bytes);
    this.bytes += bytes;
    const timer = setTimeout(() => {
      if (!this.pending.has(response)) return;
      this.log.info(
        { bytes, sendTimeoutMs: this.bounds.sendTimeoutMs },
        'the client did not read its answer in time (http.sendTimeoutMs): connection closed',
      );
      this.cut(response);
    }, this.bounds.sendTimeoutMs);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      this.forget(response);
    };
    response.once('finish', done);
    response.once('close', done);
    this.shed(response);
  }

  /** Cuts the oldest answers (not `newest`) until the unsent total fits `maxUnsentBytes`. */
  private shed(newest: ServerResponse): void {
    if (this.bytes <= this.bounds.maxUnsentBytes) return;
    for (const [response, bytes] of [...this.pending]) {
      if (this.bytes <= this.bounds.maxUnsentBytes) return;
      if (response === newest) continue;
      this.log.warn(
        { bytes, unsentBytes: this.bytes, maxUnsentBytes: this.bounds.maxUnsentBytes },
        'too many bytes of answers are waiting for their clients (http.maxUnsentBytes): closing the oldest connection',
      );
      this.cut(response);
    }
  }

  private cut(response: ServerResponse): void {
    this.forget(response);
    response.socket?.destroy();
  }

  private forget(response: ServerResponse): void {
    const bytes = this.pending.get(response);
    if (bytes === undefined) return;
    this.pending.delete(response);
    this.bytes -= bytes;
  }
}

export function installSendBounds(app: FastifyInstance, bounds: SendBounds): UnsentAnswers {
  const unsent = new UnsentAnswers(bounds, app.log);
  app.addHook('onSend', (_request, reply, payload, done) => {
    unsent.track(reply.raw, byteLength(payload));
    done(null, payload);
  });
  return unsent;
}

function byteLength(payload: unknown): number {
  if (typeof payload === 'string') return Buffer.byteLength(payload);
  if (Buffer.isBuffer(payload)) return payload.length;
  return 0; // a stream: its time is bounded, its bytes are not known in advance
}

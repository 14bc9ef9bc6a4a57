/**
 * Every phase of a client connection is bounded, so a client that stops half-way holds nothing
 * for long (issue 22, defect 1: a body that stopped mid-way stayed open for 330 s and counting,
 * and 1,100 idle connections exhausted the open-file limit until every new client got
 * ECONNRESET):
 *
 * - headers: `http.headersTimeoutMs` from a request's first byte (Node's `headersTimeout`,
 *   checked every `checkIntervalMs`); also bounds a connection that sends nothing at all;
 * - body: `http.bodyTimeoutMs` from the end of the headers (`boundBodyTime`, our own timer:
 *   answered 408 DS_ERR_BODY_TIMEOUT in the error shape, then the connection is closed). Node's
 *   `requestTimeout` (headers + body + a margin) stays behind it as a backstop;
 * - a body nobody will read: an answer sent before the body was read (401, 404, 413, 503, ...)
 *   closes its connection, instead of the server reading and discarding the rest for as long
 *   as the client keeps sending;
 * - keep-alive: `http.keepAliveTimeoutMs` between requests;
 * - the answer's way out: see send-bounds.ts;
 * - how many: `http.maxConnections`; beyond it Node closes new connections as soon as they are
 *   accepted, so the process never runs out of file descriptors and its existing connections
 *   keep being served. Default: the open-file limit less a reserve for the process's own files.
 *
 * What the HTTP parser itself refuses (malformed requests, headers too large, the timeouts it
 * enforces) never reaches fastify; `answerClientError` answers those in the error shape too.
 */
import { readFileSync } from 'node:fs';
import { STATUS_CODES, type IncomingMessage, type Server, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import {
  DS_ERR_BAD_HTTP,
  DS_ERR_BODY_TIMEOUT,
  DS_ERR_HEADERS_TOO_LARGE,
  DS_ERR_REQUEST_TIMEOUT,
} from '../core/errors.js';

export interface ConnectionLimits {
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** null: from the open-file limit (`defaultMaxConnections`). */
  readonly maxConnections: number | null;
}

/** File descriptors kept for the process itself (model files, logs, pipes, the state file...). */
const RESERVED_FDS = 128;
/** Used where the open-file limit cannot be read (not Linux): fits the common limit of 1024. */
const FALLBACK_MAX_CONNECTIONS = 896;
const MAX_DEFAULT_CONNECTIONS = 10_000;

/** fastify options for the server it creates. */
export function serverOptionsFor(limits: ConnectionLimits): {
  http: ServerOptions;
  requestTimeout: number;
  keepAliveTimeout: number;
  clientErrorHandler: (error: Error, socket: Socket) => void;
} {
  const checkIntervalMs = Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)));
  // A backstop behind boundBodyTime, which answers first with the better message.
  const requestTimeout = limits.headersTimeoutMs + limits.bodyTimeoutMs + 2 * checkIntervalMs;
  return {
    http: { headersTimeout: limits.headersTimeoutMs, requestTimeout, connectionsCheckingInterval: checkIntervalMs },
    requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    clientErrorHandler: answerClientError,
  };
}

/** Sets the connection cap on the listening server and logs (at most every 10 s) what it drops. */
export function capConnections(server: Server, limits: ConnectionLimits, log: FastifyBaseLogger): number {
  const max = limits.maxConnections ?? defaultMaxConnections();
  server.maxConnections = max;
  let dropped = 0;
  let loggedAt = 0;
  server.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - loggedAt < 10_000) return;
    loggedAt = now;
    log.warn({ maxConnections: max, dropped }, `connection refused: ${max} connections are open (http.maxConnections)`);
    dropped = 0;
  });
  return max;
}

/** The soft open-file limit less a reserve, from /proc (Linux); a fixed fallback elsewhere. */
export function defaultMaxConnections(limitsFile = '/proc/self/limits'): number {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(limitsFile, 'utf8'));
    if (!match || match[1] === 'unlimited') return MAX_DEFAULT_CONNECTIONS;
    return Math.max(32, Math.min(MAX_DEFAULT_CONNECTIONS, Number(match[1]) - RESERVED_FDS));
  } catch {
    return FALLBACK_MAX_CONNECTIONS;
  }
}

/** Whether a request announces a body. */
export function hasBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The body must arrive within `bodyTimeoutMs` of the end of the headers; a body already
 * received with its headers (most requests) costs no timer. Past it the request is answered 408
 * and, since its body was not read, its connection closes (`closeUnreadBodies`).
 */
export function boundBodyTime(app: FastifyInstance, bodyTimeoutMs: number): void {
  app.addHook('preParsing', (request, reply, payload, done) => {
    const raw = request.raw;
    if (raw.complete || !hasBody(raw)) return done(null, payload);
    const bounded = new PassThrough();
    const timer = setTimeout(() => {
      if (reply.sent) raw.socket?.destroy();
      else bounded.destroy(new DS_ERR_BODY_TIMEOUT(bodyTimeoutMs));
    }, bodyTimeoutMs);
    const stop = (): void => clearTimeout(timer);
    raw.once('end', stop);
    reply.raw.once('close', stop);
    payload.pipe(bounded);
    done(null, bounded);
  });
}

/** An answer sent before its request's body was read closes the connection. */
export function closeUnreadBodies(app: FastifyInstance): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    if (!request.raw.complete && hasBody(request.raw)) void reply.header('connection', 'close');
    done(null, payload);
  });
}

/**
 * fastify's `clientErrorHandler`: what Node's HTTP parser refuses, in the error shape, then the
 * connection is closed. Nothing is written when an answer has already started on the socket.
 */
export function answerClientError(this: FastifyInstance | undefined, error: Error, socket: Socket): void {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ECONNRESET' || socket.destroyed) return;
  const answer =
    code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new DS_ERR_REQUEST_TIMEOUT()
      : code === 'HPE_HEADER_OVERFLOW'
        ? new DS_ERR_HEADERS_TOO_LARGE()
        : new DS_ERR_BAD_HTTP(parserReason(error));
  this?.log.debug({ code, status: answer.statusCode }, answer.message);
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && !inFlight?.headersSent) {
    const body = JSON.stringify({ error: answer.message, code: answer.code });
    const status = answer.statusCode ?? 400;
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroySoon();
}

/** Node's parser errors carry a short reason ("Invalid method encountered"); never the request itself. */
function parserReason(error: Error): string {
  const reason = (error as Error & { reason?: unknown }).reason;
  const text =
    typeof reason === 'string' && reason !== '' ? reason : ((error as NodeJS.ErrnoException).code ?? 'unreadable');
  return text.slice(0, 100);
}

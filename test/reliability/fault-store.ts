/**
 * A misbehaving delta store on 127.0.0.1 (node:http): each path serves one delta in a mode the
 * test sets and changes at will — healthy, or one of the faults a real object store or CDN shows.
 * `down` is a port nobody listens on (connection refused) until `recoverDown()` listens there.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type FaultMode =
  | 'ok'
  /** Response headers only after `slowMs`. */
  | 'slow'
  /** 503 on every request. */
  | '5xx'
  /** 500 on the first request after the mode is set, then healthy (a blip retries absorb). */
  | '5xx-once'
  /** The full Content-Length announced, half the body sent, the socket destroyed. */
  | 'truncated'
  /** The right length, some bytes flipped. */
  | 'corrupted'
  /** Another valid delta: bytes that do not match the registered sha256. */
  | 'wrong-sha256'
  /** Headers at once, then 64 bytes every 100 ms. */
  | 'drip'
  /** 302 to itself, forever. */
  | 'redirect-loop'
  /** `Content-Length: 10^12`, then nothing. */
  | 'huge-length';

export interface StoredDelta {
  readonly bytes: Uint8Array;
  /** Served in `wrong-sha256` mode. */
  readonly other: Uint8Array;
}

export class FaultStore {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly modes = new Map<string, FaultMode>();
  private readonly requests = new Map<string, number>();
  private downServer: Server | null = null;
  port = 0;
  /** A port that refuses connections (nothing listens there) until `recoverDown()`. */
  downPort = 0;

  constructor(
    private readonly deltas: ReadonlyMap<string, StoredDelta>,
    private readonly slowMs = 10_000,
  ) {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (socket) => this.track(socket));
  }

  async start(): Promise<void> {
    this.port = await listenOn(this.server, 0);
    // Take a free port and release it: connections to it are refused until recoverDown().
    const probe = createServer();
    this.downPort = await listenOn(probe, 0);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  }

  set(name: string, mode: FaultMode): void {
    this.modes.set(name, mode);
    this.requests.set(name, 0);
  }

  /** Requests received for `name` since its mode was last set. */
  requestCount(name: string): number {
    return this.requests.get(name) ?? 0;
  }

  uri(name: string): string {
    return `http://127.0.0.1:${this.port}/deltas/${name}.safetensors`;
  }

  downUri(name: string): string {
    return `http://127.0.0.1:${this.downPort}/deltas/${name}.safetensors`;
  }

  /** Starts serving (healthy) on the port that was down. */
  async recoverDown(): Promise<void> {
    this.downServer = createServer((req, res) => this.handle(req, res));
    this.downServer.on('connection', (socket) => this.track(socket));
    await listenOn(this.downServer, this.downPort);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(
      [this.server, this.downServer].map((s) =>
        s ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve(),
      ),
    );
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    res.on('error', () => undefined);
    const name = /^\/deltas\/([\w-]+)\.safetensors$/.exec(req.url ?? '')?.[1];
    const delta = name === undefined ? undefined : this.deltas.get(name);
    if (name === undefined || delta === undefined) {
      res.writeHead(404).end();
      return;
    }
    const count = (this.requests.get(name) ?? 0) + 1;
    this.requests.set(name, count);
    const mode = this.modes.get(name) ?? 'ok';
    const full = (bytes: Uint8Array) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.byteLength });
      res.end(bytes);
    };
    switch (mode) {
      case 'ok':
        return full(delta.bytes);
      case 'slow': {
        const timer = setTimeout(() => full(delta.bytes), this.slowMs);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case '5xx':
        res.writeHead(503, { 'content-type': 'text/plain' }).end('store unavailable');
        return;
      case '5xx-once':
        if (count === 1) res.writeHead(500, { 'content-type': 'text/plain' }).end('blip');
        else full(delta.bytes);
        return;
      case 'truncated':
        res.writeHead(200, { 'content-length': delta.bytes.byteLength });
        res.write(delta.bytes.subarray(0, delta.bytes.byteLength >> 1), () => res.destroy());
        return;
      case 'corrupted': {
        const bytes = Uint8Array.from(delta.bytes);
        for (let i = 100; i < bytes.length; i += 997) bytes[i]! ^= 0x5a;
        return full(bytes);
      }
      case 'wrong-sha256':
        return full(delta.other);
      case 'drip': {
        res.writeHead(200, { 'content-length': delta.bytes.byteLength });
        let sent = 0;
        const timer = setInterval(() => {
          if (sent >= delta.bytes.byteLength) return void clearInterval(timer);
          res.write(delta.bytes.subarray(sent, sent + 64));
          sent += 64;
        }, 100);
        res.on('close', () => clearInterval(timer));
        return;
      }
      case 'redirect-loop':
        res.writeHead(302, { location: req.url }).end();
        return;
      case 'huge-length':
        res.writeHead(200, { 'content-length': String(10 ** 12) });
        res.flushHeaders();
        return;
    }
  }
}

function listenOn(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
  });
}

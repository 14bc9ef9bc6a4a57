/**
 * The gateway configuration after validation: every field present, every default filled in,
 * every path absolute. `docs/http-api.md` (Configuration) documents each field; the validator
 * (`config-validate.ts`) is the single source of defaults and bounds.
 */

export type ExecutionProvider = 'cpu' | 'cuda' | 'webgpu';
export type ActivationMode = 'patch' | 'graph' | 'mixed';
/** `auto`: mixed where its one-session pipeline serves the base on the CPU, else patch; graph on a GPU. */
export type ActivationModeChoice = ActivationMode | 'auto';
/** Mixed mode's side-path kernel: the native addon when it built (`auto`), always (`native`), or the portable one (`js`). */
export type SideKernelChoice = 'auto' | 'native' | 'js';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type DeltaScheme = 'file' | 'http' | 'https';

/** One task version as configuration declares it (the `registry.tasks` list or a manifest). */
export interface TaskSpec {
  readonly name: string;
  readonly version: string;
  /** Delta location: a path (relative to `deltas.fileRoot`), `file://` URL or http(s) URL. */
  readonly uri: string;
  /** sha256 (64 hex digits, lower case) of the delta file's bytes. */
  readonly sha256: string;
  readonly description: string;
  /** Class names of the task's logits, in order; null when the task is not a classifier. */
  readonly labels: readonly string[] | null;
  /** How many leading logits belong to the task (a head narrower than the base's); null = all. */
  readonly numClasses: number | null;
}

export interface RateLimitConfig {
  /** Sustained requests per second (token refill rate). */
  readonly requestsPerSecond: number;
  /** Bucket size: requests that may arrive at once after an idle period. */
  readonly burst: number;
}

export interface TenantConfig {
  readonly name: string;
  /** sha256 hex of each accepted API key (several allow rotation). */
  readonly keySha256: readonly string[];
  /** Task names the tenant may use; `*` = every registered task; `base` = the bare base model. */
  readonly tasks: readonly string[];
  /** Visible name → `task` or `task@version`. An alias grants access to its target. */
  readonly aliases: Readonly<Record<string, string>>;
  /** Task name → version → weight (positive; normalised over the versions that exist). */
  readonly splits: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly rateLimit: RateLimitConfig | null;
  /** Inference requests in flight at once; null = unbounded. */
  readonly maxConcurrent: number | null;
  /** Passed to the scheduler: higher is served first among waiting batches. */
  readonly priority: number;
}

export interface GatewayConfig {
  /** Where the configuration came from (file path), for messages. */
  readonly source: string;
  readonly devMode: boolean;
  readonly listen: { readonly host: string; readonly port: number };
  readonly model: {
    /** Zoo manifest (base + tasks); exactly one of `manifest` and `path` is set. */
    readonly manifest: string | null;
    /** Base ONNX model, when there is no manifest. */
    readonly path: string | null;
    /** Class names of the base model's logits (overrides the manifest's). */
    readonly labels: readonly string[] | null;
    /** Globs over weight names deltas may touch; empty = every float weight. */
    readonly patchable: readonly string[];
  };
  readonly engine: {
    readonly executionProvider: ExecutionProvider;
    /** Used when `executionProvider` cannot start (no driver, no adapter); null = fail start-up. */
    readonly fallbackExecutionProvider: ExecutionProvider | null;
    readonly deviceId: number;
    readonly mode: ActivationModeChoice;
    readonly intraOpThreads: number;
    /** Mixed mode: which side-path kernel runs. */
    readonly sideKernel: SideKernelChoice;
    /** Mixed mode: threads of one native side-kernel call; 0 = as many as `intraOpThreads` (0 there too: all cores). */
    readonly sideKernelThreads: number;
    readonly cacheBytes: number;
    readonly restartDelayMs: number;
    readonly maxRestartDelayMs: number;
  };
  readonly batching: {
    readonly maxBatchSize: number;
    readonly maxQueueDelayMs: number;
    readonly maxQueuedPerTask: number;
    readonly maxQueuedTotal: number;
    readonly forcedSwitchWaitMs: number;
    /**
     * Mixed mode: most input elements (tokens, for token-id inputs: the first model input's
     * element count per request) in one mixed batch; null = only maxBatchSize bounds it.
     */
    readonly maxBatchTokens: number | null;
  };
  readonly timeouts: {
    /** Deadline of a request that names none. */
    readonly inferTimeoutMs: number;
    /** Largest deadline a request may ask for (larger ones are capped). */
    readonly maxInferTimeoutMs: number;
    /** A registration not finished by then is abandoned (504, nothing changed). */
    readonly adminChangeTimeoutMs: number;
  };
  readonly http: {
    /** Largest JSON request body, bytes (413 above). */
    readonly bodyLimitBytes: number;
    /** Largest PNG upload to the classify route, bytes (413 above). */
    readonly imageBodyLimitBytes: number;
    /** Largest width × height a PNG may declare (400 above); bounds decoded memory. */
    readonly imageMaxPixels: number;
    /** PNG decodes running at once, each in its own worker thread. */
    readonly imageDecodeConcurrency: number;
    /** PNG decodes that may wait for a decoder (503 DS_ERR_OVERLOADED beyond). */
    readonly imageDecodeQueue: number;
    /** A PNG decode running longer is stopped (400). */
    readonly imageDecodeTimeoutMs: number;
    /** A request's headers must arrive within this, from its first byte (408, connection closed). */
    readonly headersTimeoutMs: number;
    /** A request's body must arrive within this, from the end of its headers (408, connection closed). */
    readonly bodyTimeoutMs: number;
    /** An idle keep-alive connection is closed after this. */
    readonly keepAliveTimeoutMs: number;
    /** A response not handed to the operating system within this (a client that does not read) loses its connection. */
    readonly sendTimeoutMs: number;
    /** Bytes of responses not yet handed to the operating system, all connections together; beyond, the oldest lose their connection. */
    readonly maxUnsentBytes: number;
    /** Open client connections; beyond, new ones are closed at once. null = from the open-file limit. */
    readonly maxConnections: number | null;
    /** Rows (the first dimension of each input) one inference request may carry (413 above). */
    readonly maxRowsPerRequest: number;
  };
  readonly deltas: {
    readonly fileRoot: string;
    readonly allowedSchemes: readonly DeltaScheme[];
    readonly allowedHosts: readonly string[];
    /** Connect to loopback, link-local, private, multicast… addresses too (SSRF opt-out). */
    readonly allowPrivateAddresses: boolean;
    readonly maxBytes: number;
    readonly connectTimeoutMs: number;
    readonly headersTimeoutMs: number;
    readonly bodyTimeoutMs: number;
    readonly fetchTimeoutMs: number;
    readonly minBytesPerSecond: number;
    readonly rateGraceMs: number;
    readonly retries: number;
  };
  readonly registry: {
    /** Runtime registrations are persisted here; null = not persisted (tests, throwaway runs). */
    readonly stateFile: string | null;
    readonly tasks: readonly TaskSpec[];
    /** Replicas sharing `stateFile` re-check it this often: the bound on how stale a replica's registry gets. */
    readonly pollIntervalMs: number;
    /** Also `fs.watch` the state file's folder (faster on local disks; network volumes need the poll). */
    readonly watch: boolean;
    /** A change lock on the state file older than this is taken over (its holder died). */
    readonly lockStaleMs: number;
  };
  readonly tenants: readonly TenantConfig[];
  readonly admin: { readonly keySha256: readonly string[] };
  readonly telemetry: {
    readonly serviceName: string;
    readonly otlpEndpoint: string | null;
    /**
     * sha256 hex digests of scraper keys: `/metrics` (whose labels name tenants and tasks) takes
     * `Authorization: Bearer <key>` with one of these or the admin key. Default [].
     */
    readonly metricsKeySha256: readonly string[];
    /** Serve `/metrics` without a key. Default false: an explicit opt-in. */
    readonly metricsAnonymous: boolean;
  };
  readonly logLevel: LogLevel;
  readonly shutdownGraceMs: number;
}

export type { DeltaSource, DeltaSourceScheme, FetchStatus } from './delta-source.js';
export { buildDeltaSource, type DeltaSourceOptions } from './build-delta-source.js';
export { FileDeltaSource, type FileDeltaSourceOptions } from './file-source.js';
export { HttpDeltaSource, type HttpDeltaSourceOptions } from './http-source.js';
export { redactUri } from './uri.js';

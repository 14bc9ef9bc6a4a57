// Entry of the engine worker when running from TypeScript sources (tests, `npm run cli`):
// Node 20 does not pass the main thread's tsx loader on to worker threads, so load it here.
// The compiled build (dist/) starts worker.js directly and never uses this file.
import { tsImport } from 'tsx/esm/api';

await tsImport('./worker.ts', import.meta.url);

/**
 * Which optional native addons this checkout built (npm ci builds them when it can: a compiler
 * for the side kernel, plus ONNX Runtime's C headers for the custom op), found by the gateway's
 * own loaders. `node --import tsx test/helpers/native-probe.ts` prints one JSON line,
 * `{ "kernel": reason | null, "customOp": reason | null }` (null: it loads); scripts/run-tests.mjs
 * runs it once per test run, in a child because loading an addon maps it into the process.
 */
import { loadSideKernel } from '../../src/engine/runtime/mixed/kernel/load-kernel.js';
import { loadOrtAddon } from '../../src/engine/runtime/mixed/one-session/ort-addon.js';

const kernel = loadSideKernel({ threads: 1, prefer: 'auto' });
const customOp = loadOrtAddon();
console.log(JSON.stringify({ kernel: kernel.reason, customOp: customOp.reason }));

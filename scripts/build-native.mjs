// `npm ci` runs this (package.json "install"): builds the side-path kernel addon
// (binding.gyp → build/Release/deltaserve_side_kernel.node) and the custom-op addon
// (native/ort-custom-op/binding.gyp → build/Release/deltaserve_ort_custom_op.node) with the
// node-gyp that npm bundles. Never fails the install: without a compiler the gateway uses the
// portable kernel, without ONNX Runtime's headers mixed mode runs its segment pipeline; both are
// reported at start-up (src/engine/runtime/mixed/). Prints one line per addon either way.
//
// ONNX Runtime headers: ORT_INCLUDE_DIR when set, else scripts/ort-headers.sh fetches Debian's
// libonnxruntime-dev and extracts only its headers (nothing installed) into
// node_modules/.cache/deltaserve-ort-headers, kept across rebuilds. DELTASERVE_SKIP_ORT_CUSTOM_OP=1
// skips that addon (CI builds the segment fallback this way).
//
// Headers: node-gyp downloads Node's headers from nodejs.org unless it finds them, and CI and
// image builds reach only the npm registry. So: npm's `nodedir` when set, else this Node's own
// prefix when it has include/node, else a directory made from the `node-api-headers` package
// (N-API is all the addon uses, so those headers serve every Node version).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));

/** npm's own node-gyp, beside npm's bin/npm-cli.js. */
const besideNpm = (npmCli) => join(dirname(npmCli), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');

function findNodeGyp() {
  const npmOnPath = (process.env.PATH ?? '')
    .split(delimiter)
    .map((dir) => join(dir, 'npm'))
    .filter((npm) => existsSync(npm))
    .map((npm) => besideNpm(realpathSync(npm)));
  const candidates = [
    process.env.npm_config_node_gyp,
    // The npm running this script (npm ci), then any npm on PATH.
    process.env.npm_execpath && besideNpm(process.env.npm_execpath),
    ...npmOnPath,
  ];
  for (const candidate of candidates) if (candidate && existsSync(candidate)) return candidate;
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return null;
  }
}

const COMMON_GYPI = `{
  'variables': { 'node_shared%': 'false', 'node_module_version%': '' },
  'target_defaults': {
    'default_configuration': 'Release',
    'configurations': {
      'Debug': { 'defines': ['DEBUG', '_DEBUG'], 'cflags': ['-g', '-O0'] },
      'Release': { 'cflags': ['-O3'] },
    },
    'cflags': ['-fPIC', '-pthread', '-Wall', '-Wextra', '-Wno-unused-parameter'],
    'cflags_cc': ['-fno-rtti', '-fno-exceptions', '-std=gnu++17'],
    'ldflags': ['-pthread', '-rdynamic'],
  },
}
`;

function findNodeDir() {
  const configured = process.env.npm_config_nodedir;
  if (configured && existsSync(join(configured, 'include', 'node', 'node_api.h'))) return configured;
  const prefix = resolve(dirname(process.execPath), '..');
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  const headers = dirname(require.resolve('node-api-headers/package.json'));
  // Outside build/, which `node-gyp rebuild` empties first.
  const shim = join(root, 'node_modules', '.cache', 'deltaserve-node-api-nodedir');
  mkdirSync(join(shim, 'include', 'node'), { recursive: true });
  for (const name of readdirSync(join(headers, 'include'))) {
    copyFileSync(join(headers, 'include', name), join(shim, 'include', 'node', name));
  }
  // node-gyp includes the nodedir's common.gypi: the build configurations Node's own would give.
  writeFileSync(join(shim, 'include', 'node', 'common.gypi'), COMMON_GYPI);
  return shim;
}

/** Runs `node-gyp rebuild` in `cwd`; null on success, else the first line naming the cause (full log in `logName`). */
function nodeGypRebuild(nodeGyp, nodeDir, cwd, extraArgs, logName) {
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--release', `--nodedir=${nodeDir}`, ...extraArgs], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, npm_config_nodedir: nodeDir },
  });
  if (result.status === 0) return null;
  const log = join(root, 'build', logName);
  mkdirSync(dirname(log), { recursive: true });
  writeFileSync(log, `${result.error ?? ''}\n${result.stdout ?? ''}\n${result.stderr ?? ''}`);
  // The first line that names the cause (a missing compiler or header, a compile error).
  const lines = `${result.error ?? ''}\n${result.stderr ?? ''}`.split('\n');
  const cause =
    lines.find(
      (line) => /(^|\s)(\w*Error|error):|not found|No such file/.test(line) && !line.startsWith('gyp ERR! stack'),
    ) ?? `node-gyp exited with ${result.status ?? result.signal}`;
  return `${cause.trim().slice(0, 200)}; log: build/${logName}`;
}

function buildSideKernel(nodeGyp, nodeDir) {
  const failure = nodeGypRebuild(nodeGyp, nodeDir, root, [], 'native-build.log');
  if (failure === null) return 'built build/Release/deltaserve_side_kernel.node';
  return `not built (${failure}); the portable kernel will run`;
}

/** How long `npm ci` may spend fetching ONNX Runtime's headers before it builds without them. */
const HEADER_FETCH_TIMEOUT_S = 90;

/** The folder holding onnxruntime_c_api.h, or a reason why there is none. */
function findOrtHeaders() {
  const given = process.env.ORT_INCLUDE_DIR;
  if (given) {
    if (existsSync(join(given, 'onnxruntime_c_api.h'))) return { dir: resolve(given) };
    return { reason: `ORT_INCLUDE_DIR=${given} has no onnxruntime_c_api.h` };
  }
  if (process.platform !== 'linux')
    return { reason: `the custom op is built on Linux only (this is ${process.platform})` };
  const cache = join(root, 'node_modules', '.cache', 'deltaserve-ort-headers');
  // Best effort and bounded: a machine that reaches the npm registry but not the Debian mirror
  // must not have `npm ci` wait on apt's connection retries. coreutils' `timeout` ends the whole
  // process group (apt's helpers too, which would otherwise keep spawnSync's pipes open).
  const seconds = String(HEADER_FETCH_TIMEOUT_S);
  const fetched = spawnSync('timeout', ['-k', '5', seconds, 'sh', join(root, 'scripts', 'ort-headers.sh'), cache], {
    encoding: 'utf8',
  });
  if (fetched.status === 0 && existsSync(join(cache, 'onnxruntime_c_api.h'))) return { dir: cache };
  const why =
    fetched.status === 124
      ? `fetching them took over ${seconds} s`
      : `${fetched.error?.message ?? ''}${fetched.stderr ?? ''}`.trim().split('\n').pop();
  return { reason: `ONNX Runtime headers not found (${why || 'scripts/ort-headers.sh failed'}); set ORT_INCLUDE_DIR` };
}

function buildOrtCustomOp(nodeGyp, nodeDir) {
  const fallback = 'mixed mode will run its segment pipeline';
  if (process.env.DELTASERVE_SKIP_ORT_CUSTOM_OP === '1')
    return `skipped (DELTASERVE_SKIP_ORT_CUSTOM_OP=1); ${fallback}`;
  const headers = findOrtHeaders();
  if (!headers.dir) return `not built (${headers.reason}); ${fallback}`;
  const dir = join(root, 'native', 'ort-custom-op');
  const failure = nodeGypRebuild(
    nodeGyp,
    nodeDir,
    dir,
    [`--ort_include_dir=${headers.dir}`],
    'ort-custom-op-build.log',
  );
  if (failure !== null) return `not built (${failure}); ${fallback}`;
  const target = join(root, 'build', 'Release', 'deltaserve_ort_custom_op.node');
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(join(dir, 'build', 'Release', 'deltaserve_ort_custom_op.node'), target);
  return `built build/Release/deltaserve_ort_custom_op.node (headers: ${headers.dir})`;
}

function main() {
  if (process.env.DELTASERVE_SKIP_NATIVE === '1') {
    return [
      'native side kernel: skipped (DELTASERVE_SKIP_NATIVE=1)',
      'ort custom op: skipped (DELTASERVE_SKIP_NATIVE=1)',
    ];
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp)
    return ['native side kernel: not built: node-gyp not found', 'ort custom op: not built: node-gyp not found'];
  const nodeDir = findNodeDir();
  const lines = [
    `native side kernel: ${guarded(() => buildSideKernel(nodeGyp, nodeDir), 'the portable kernel will run')}`,
  ];
  // After the side kernel: its `node-gyp rebuild` empties build/, where this addon is copied.
  lines.push(
    `ort custom op: ${guarded(() => buildOrtCustomOp(nodeGyp, nodeDir), 'mixed mode will run its segment pipeline')}`,
  );
  return lines;
}

function guarded(build, fallback) {
  try {
    return build();
  } catch (error) {
    return `not built (${error instanceof Error ? error.message : String(error)}); ${fallback}`;
  }
}

let lines;
try {
  lines = main();
} catch (error) {
  lines = [`native addons: not built (${error instanceof Error ? error.message : String(error)})`];
}
for (const line of lines) console.log(`deltaserve ${line}`);

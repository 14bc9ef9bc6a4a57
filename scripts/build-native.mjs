// `npm ci` runs this (package.json "install"): builds the side-path kernel addon
// (binding.gyp → build/Release/deltaserve_side_kernel.node) with the node-gyp that npm bundles.
// Never fails the install: without a compiler the gateway uses the portable kernel, which
// src/engine/runtime/mixed/kernel/load-kernel.ts reports at start-up. Prints one line either way.
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

function main() {
  if (process.env.DELTASERVE_SKIP_NATIVE === '1') return 'skipped (DELTASERVE_SKIP_NATIVE=1)';
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return 'not built: node-gyp not found';
  const nodeDir = findNodeDir();
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--release', `--nodedir=${nodeDir}`], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, npm_config_nodedir: nodeDir },
  });
  if (result.status === 0) return 'built build/Release/deltaserve_side_kernel.node';
  const log = join(root, 'build', 'native-build.log');
  mkdirSync(dirname(log), { recursive: true });
  writeFileSync(log, `${result.error ?? ''}\n${result.stdout ?? ''}\n${result.stderr ?? ''}`);
  // The first line that names the cause (a missing compiler or header, a compile error).
  const lines = `${result.error ?? ''}\n${result.stderr ?? ''}`.split('\n');
  const cause =
    lines.find(
      (line) => /(^|\s)(\w*Error|error):|not found|No such file/.test(line) && !line.startsWith('gyp ERR! stack'),
    ) ?? `node-gyp exited with ${result.status ?? result.signal}`;
  return `not built (${cause.trim().slice(0, 200)}); the portable kernel will run; log: build/native-build.log`;
}

let line;
try {
  line = main();
} catch (error) {
  line = `not built (${error instanceof Error ? error.message : String(error)}); the portable kernel will run`;
}
console.log(`deltaserve native side kernel: ${line}`);

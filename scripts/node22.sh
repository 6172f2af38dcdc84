#!/usr/bin/env bash
# The Functions path's tests on Node 22, the runtime the app runs on in Azure
# (infra/modules/functionapp.bicep: runtime node 22), whatever Node this machine has: the Functions
# handlers, the engine thread, the run ledger on Azurite and the CLI's launcher (which replaces its
# process on Node 22.15+ and runs a child on Node 20). Node 22 comes from the npm registry (the
# `node` package, pinned), kept in node_modules/.cache.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE22_VERSION=22.23.3
dir="node_modules/.cache/node-$NODE22_VERSION"
if [ ! -x "$dir/node_modules/.bin/node" ]; then
  echo "== installing node@$NODE22_VERSION from the npm registry into $dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund "node@$NODE22_VERSION" >/dev/null
fi
export PATH="$PWD/$dir/node_modules/.bin:$PATH"
echo "== the Functions path's tests on node $(node --version)"
npx tsx scripts/with-sandbox-ca.ts jest test/e2e/functions test/integration/azurite.ledger.test.ts test/unit/cli

// Runs the unit/integration tests of the JavaScript client (clients/js/test) under this
// suite: builds the client first (scripts/build-web.sh: npm ci when missing, tsc + esbuild).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
execFileSync(path.join(repo, 'scripts/build-web.sh'), { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300000 });
await import('../../clients/js/test/unit.test.mjs');
await import('../../clients/js/test/client.test.mjs');
await import('../../clients/js/test/signals.test.mjs');
await import('../../clients/js/test/users.test.mjs');

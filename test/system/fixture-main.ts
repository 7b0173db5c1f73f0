// Runs inside the system-test container (node --import tsx): the fixture
// backend (test/helpers/fixture-backend.ts) on 127.0.0.1, port 0, for the
// proxy's upstream. Writes {"url": ...} to the file named by argv[2] once it
// listens (temp file + rename, so the test never reads half of it), then
// serves until systemd stops it. Must not: pick a port.
import { renameSync, writeFileSync } from 'node:fs';
import { startFixtureBackend } from '../helpers/fixture-backend.js';

const out = process.argv[2];
if (!out) throw new Error('usage: fixture-main.ts OUT.json');
const backend = await startFixtureBackend({ host: '127.0.0.1' });
writeFileSync(`${out}.tmp`, JSON.stringify({ url: backend.url }));
renameSync(`${out}.tmp`, out);

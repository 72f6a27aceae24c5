// The kill test's short run (kill.ts): each command killed twice with SIGKILL at seeded random
// points, then checked (no partial or foreign output, no user file touched) and run once more to
// completion. `npm run fuzz` kills each command 50 times.
import { test } from 'node:test';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SHARED } from './cli-fuzz.js';
import { KILL_COMMANDS, killTest, killWorkdir } from './kill.js';

const skip = existsSync(join(SHARED, 'models/stories260K/stories260K.bin')) ? false : 'needs ../shared (stories260K)';
const KILLS = 2;

for (const [i, cmd] of KILL_COMMANDS.entries()) {
  test(`kill: ${cmd.name} killed ${KILLS}× at random points leaves no partial output and deletes nothing; the next run succeeds`, { skip, timeout: 300_000 }, async () => {
    const d = killWorkdir();
    try {
      const s = await killTest(d, cmd, KILLS, 7000 + i, cmd.workMs);
      if (process.env.FUZZ_VERBOSE) console.log(JSON.stringify(s));
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
}

// processAlive (src/formats/io/file.ts), which decides whether an output lock or a temporary file
// belongs to a live run: a running process is alive, an exited one is not, and a zombie (killed,
// its parent gone or not reaping: what a SIGKILLed `bitscale` launcher can leave for a moment in a
// container whose init reaps late) is not either.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { processAlive } from '../../src/formats/io/file.js';

const skip = existsSync('/proc/self/stat') ? false : 'needs /proc';

test('processAlive: this process yes, a zombie no, a reaped process no', { skip, timeout: 30_000 }, async () => {
  assert.equal(processAlive(process.pid), true);
  // sh starts `sleep 0.3` in the background and becomes `sleep 3`, which never reaps it: a zombie
  // until then. (With `sleep 0` the child could end while sh was still sh, and sh reaped it: seen
  // once in CI as ENOENT on its /proc entry.)
  const sh = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 3'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const zombie = await new Promise<number>((res) => sh.stdout!.once('data', (b: Buffer) => res(Number(b.toString().trim()))));
  let state = '';
  for (let i = 0; i < 100 && state !== 'Z'; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const st = readFileSync(`/proc/${zombie}/stat`, 'utf8');
    state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
  }
  assert.equal(state, 'Z', 'the background sleep became a zombie');
  assert.equal(processAlive(zombie), false);
  assert.equal(processAlive(sh.pid!), true);
  sh.kill('SIGKILL');
  await new Promise((r) => sh.once('close', r));
  assert.equal(processAlive(sh.pid!), false);
});

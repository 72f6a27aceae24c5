// The suite's short run of the command-line fuzzer (cli-fuzz.ts): a fixed seed, a few hundred
// mutated tokenizers, configs, vocabularies, headers, GGUF metadata, importance matrices, texts and
// runs files. No case may crash untyped (exit 70) or hang; each target must see both outcomes
// somewhere in the run (clean runs and typed refusals), so that the mutations reach the code.
// `npm run fuzz` runs the same targets much longer, in child processes, with memory figures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { sharedSkip } from '../helpers.js';
import { emptyStats, fuzzTarget, makeWorkdir, TARGETS } from './cli-fuzz.js';

const skip = sharedSkip('models/stories260K/stories260K.bin');
/** cases per unit of target weight */
const CASES = 8;
/** a hang detector, not a speed check */
const HANG_MS = 20_000;

test('fuzz: the command line around the readers (seeded): typed errors only, no hang', { skip, timeout: 600_000 }, async () => {
  const d = await makeWorkdir();
  try {
    const seen: string[] = [];
    for (const [k, t] of TARGETS.entries()) {
      if (!t.weight) continue;
      const stats = emptyStats();
      await fuzzTarget(d, t, CASES * t.weight, 1500 + k, { hangMs: HANG_MS, stats });
      if (process.env.FUZZ_VERBOSE) console.log(t.name, JSON.stringify({ cases: stats.cases, ok: stats.ok, typed: stats.typed, maxMs: Math.round(stats.maxMs) }));
      assert.deepEqual(stats.crashes.map((c) => `${c.target} #${c.iteration}: ${c.output}`), [], `${t.name}: untyped crashes`);
      assert.deepEqual(stats.hangs, [], `${t.name}: hangs`);
      assert.ok(Object.keys(stats.typed).length >= 1, `${t.name}: no mutation was refused (${JSON.stringify(stats)})`);
      seen.push(...Object.keys(stats.typed));
    }
    assert.ok(new Set(seen).size >= 5, `error codes seen: ${[...new Set(seen)].join(', ')}`);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

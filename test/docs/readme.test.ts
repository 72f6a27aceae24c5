// The README says what the code does: its JavaScript library example runs as a user would paste it
// into an .mjs file (only the package name is pointed at this checkout), and every command and
// flag it documents exists in the CLI's help, with the same commands in both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '../helpers.js';

const README = readFileSync('README.md', 'utf8');

/** The fenced blocks of a Markdown section (from its `## Title` to the next `## `). */
function blocks(title: string, lang: string): string[] {
  const start = README.indexOf(`## ${title}\n`);
  assert.ok(start >= 0, `README has a ${title} section`);
  const end = README.indexOf('\n## ', start + 4);
  const sec = README.slice(start, end < 0 ? undefined : end);
  return [...sec.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
}

test('the README\'s JavaScript example runs as an .mjs file', { timeout: 180_000 }, () => {
  const [js] = blocks('Library', 'js');
  assert.ok(js && js.includes("from 'bitscale'"), 'a js block importing bitscale');
  assert.doesNotMatch(js, /:\s*(string|number|boolean)\b[^']|\bas\s+[A-Z]\w*|!\./, 'plain JavaScript, no TypeScript syntax');
  const dir = tempDir('bitscale-readme-');
  const file = join(dir, 'example.mjs');
  writeFileSync(file, js.replace("from 'bitscale'", `from '${pathToFileURL(resolve('src/index.ts')).href}'`));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  // the example makes its own temp folder (as a user's script would); TMPDIR keeps it inside ours
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const env = { ...process.env, NODE_OPTIONS: '', TMPDIR: tmp };
  const r = spawnSync(process.execPath, ['--import', tsx, file], { cwd: dir, encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /int4-g128: PPL \d+\.\d+ \(95% /);
  assert.match(r.stdout, /Q4_0 round trip of down_proj/);
  assert.match(r.stdout, /model-gptq-int4 \(safetensors\): KL \d\.\d+e-\d+ nats\/token/);
});

/**
 * `bitscale <command> …` bullets of the Commands section: command → flags mentioned in its bullet.
 * A code span naming another command (`quantize --imatrix` inside the imatrix bullet) counts for that command.
 */
function documented(commands: string[]): Map<string, Set<string>> {
  const start = README.indexOf('## Commands\n');
  const sec = README.slice(start, README.indexOf('\n## ', start + 4));
  const out = new Map<string, Set<string>>();
  const add = (cmd: string, text: string) => {
    const flags = out.get(cmd) ?? new Set<string>();
    for (const f of text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) flags.add(f[1]);
    out.set(cmd, flags);
  };
  for (const item of sec.split(/\n- /).slice(1)) {
    const m = /^`bitscale ([a-z]+)/.exec(item);
    if (!m) continue;
    const rest = item.replace(/`(?:bitscale )?([a-z]+) ([^`]*)`/g, (span, cmd: string, args: string) => {
      if (cmd === m[1] || !commands.includes(cmd)) return span;
      add(cmd, args);
      return '';
    });
    add(m[1], rest);
  }
  return out;
}

test('every command and flag the README documents exists in the CLI help, and the command lists agree', async () => {
  const cmds = readdirSync(join('src', 'cli', 'commands')).filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
  const doc = documented(cmds);
  assert.deepEqual([...doc.keys()].sort(), cmds, 'README Commands section and `bitscale --help` list the same commands');
  const missing: string[] = [];
  for (const [cmd, flags] of doc) {
    const { meta } = (await import(`../../src/cli/commands/${cmd}.ts`)) as { meta: { usage: string } };
    const help = new Set([...meta.usage.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((x) => x[1]));
    for (const f of flags) if (!help.has(f) && f !== 'help') missing.push(`${cmd} --${f}`);
  }
  assert.deepEqual(missing, [], 'flags in the README that the help does not know');
});

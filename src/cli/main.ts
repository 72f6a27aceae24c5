#!/usr/bin/env node
// `bitscale <command> [options]`. Commands are discovered from ./commands/<name>.js.
import { readdirSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandModule } from './command.js';
import { nearest } from './args.js';
import { err, out, reportError } from './output.js';
import { relaunchTunables, runOrRelaunch } from './relaunch.js';

const here = dirname(fileURLToPath(import.meta.url));
const commandsDir = join(here, 'commands');

function commandNames(): string[] {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts') && !f.startsWith('_'))
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

async function load(name: string): Promise<CommandModule> {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return (await import(join(commandsDir, name + ext))) as CommandModule;
}

async function help(): Promise<void> {
  out('bitscale: precision-aware quantization of language models\n');
  out('usage: bitscale <command> [options]   (bitscale <command> --help for details)\n');
  out('commands:');
  for (const name of commandNames()) {
    const m = await load(name);
    out(`  ${name.padEnd(10)} ${m.meta.summary}`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    await help();
    return 0;
  }
  if (name === '--version' || name === '-v') {
    out('0.1.0');
    return 0;
  }
  if (!commandNames().includes(name)) {
    const near = nearest(name, commandNames());
    err(`bitscale: unknown command '${name}'.${near ? ` Did you mean '${near}'?` : ''} Run 'bitscale --help' for the list.`);
    return 2;
  }
  const cmd = await load(name);
  if (rest.includes('--help') || rest.includes('-h')) {
    out(cmd.meta.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    return reportError(e);
  }
}

const invokedDirectly = !!process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1]);
// on Linux/glibc the command runs in a child started with the allocator settings (relaunch.ts says why)
if (invokedDirectly) runOrRelaunch(relaunchTunables(process.argv.slice(2)), () => {
  const ac = new AbortController();
  process.once('SIGINT', () => {
    err('\nbitscale: interrupted; finishing the current step and keeping completed work (Ctrl-C again to force)');
    ac.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  (globalThis as { __bitscaleAbort?: AbortSignal }).__bitscaleAbort = ac.signal;
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => process.exit(reportError(e)),
  );
});

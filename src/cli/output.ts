// Printing and progress rendering: the only place (with main.ts) that writes to the terminal.
import type { ProgressEvent } from '../core/progress.js';
import { isBitscaleError } from '../core/errors.js';
import { TOOL_VERSION } from '../pipeline/quantize/quantize.js';

export interface OutputSink {
  stdout(text: string): void;
  stderr(text: string): void;
}

let sink: OutputSink | null = null;

/**
 * Sends what the CLI prints to `s` instead of the terminal (commands run in-process by the tests
 * and the fuzzer); null restores the terminal.
 */
export function redirectOutput(s: OutputSink | null): void {
  sink = s;
}

function writeOut(text: string): void {
  if (sink) sink.stdout(text);
  else process.stdout.write(text);
}

function writeErr(text: string): void {
  if (sink) sink.stderr(text);
  else process.stderr.write(text);
}

export function out(line = ''): void {
  writeOut(line + '\n');
}

export function err(line = ''): void {
  writeErr(line + '\n');
}

function fmtTime(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** Tasks with at most this many steps are never throttled. */
const FEW_STEPS = 8;

/** A progress renderer: a rewriting line on a TTY, one line per event (throttled) otherwise. */
export function progressPrinter(opts: { quiet?: boolean } = {}): (e: ProgressEvent) => void {
  const tty = !sink && process.stderr.isTTY;
  // throttled per task, so the first line of each phase (e.g. "llama.cpp: loading…") always shows
  const last = new Map<string, number>();
  return (e) => {
    if (opts.quiet) return;
    const now = Date.now();
    const final = e.done >= e.total;
    // a task of a few steps (checks, stages) prints each one: every check's verdict shows
    if (!tty && !final && e.total > FEW_STEPS && now - (last.get(e.task) ?? 0) < 1000) return;
    last.set(e.task, now);
    const pct = e.total > 0 ? ((100 * e.done) / e.total).toFixed(0).padStart(3) : '  ?';
    const line = `[${e.task}] ${pct}% ${e.done}/${e.total}${e.unit ? ' ' + e.unit + 's' : ''} elapsed ${fmtTime(e.elapsedS)} eta ${fmtTime(e.etaS)}${e.detail ? '  ' + e.detail : ''}`;
    if (tty) {
      writeErr('\r\x1b[2K' + line + (final ? '\n' : ''));
    } else {
      writeErr(line + '\n');
    }
  };
}

/** Prints an error for people (code and context) and returns the exit code to use. */
export function reportError(e: unknown): number {
  if (isBitscaleError(e)) {
    err(`bitscale: error [${e.code}]: ${e.message}`);
    return e.code === 'bad_option' ? 2 : 1;
  }
  err(`bitscale: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return 70;
}

/** Render rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => String(c)))];
  const w = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r, j) => {
      const line = r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
      return j === 0 ? line + '\n' + w.map((x) => '-'.repeat(x)).join('  ') : line;
    })
    .join('\n');
}

/**
 * A command's --json output: one object that starts with the tool's name and version and the
 * command (schemas in json-schemas.ts, docs/json/). BigInts print as numbers; NaN as null.
 */
export function printJson(command: string, r: object): void {
  out(JSON.stringify({ tool: { name: 'bitscale', version: TOOL_VERSION }, command, ...r }, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
}

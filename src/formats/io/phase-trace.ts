// Timestamps of a run's phases, for finding where wall time goes (docs/performance.md, sixth
// round): with BITSCALE_TRACE_PHASES=1 each mark is one stderr line "phase <ms since this process
// started> <thread> <label>"; otherwise a mark costs one boolean test. Node only.
import { isMainThread, threadId } from 'node:worker_threads';

const on = typeof process !== 'undefined' && process.env?.BITSCALE_TRACE_PHASES === '1';

/** Whether marks are written (BITSCALE_TRACE_PHASES=1). */
export const tracingPhases = (): boolean => on;

/** Writes one phase mark when tracing is on. */
export function tracePhase(label: string): void {
  if (!on) return;
  process.stderr.write(`phase ${performance.now().toFixed(1)} ${isMainThread ? 'main' : `t${threadId}`} ${label}\n`);
}

if (on && isMainThread) process.once('exit', () => tracePhase('exit'));

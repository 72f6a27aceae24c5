// Timestamps of a run's phases, for finding where wall time goes (docs/performance.md, sixth
// round): with BITSCALE_TRACE_PHASES=1 each mark is one stderr line "phase <ms since this process
// started> <wall clock ms, last 6 digits: compares a parent's marks with its child's> <pid> <label>";
// otherwise a mark costs one boolean test. Marks are made on the main thread.
// No node: import: the page's bundle includes the streaming writer that makes marks.

const on = typeof process !== 'undefined' && process.env?.BITSCALE_TRACE_PHASES === '1';

/** Whether marks are written (BITSCALE_TRACE_PHASES=1). */
export const tracingPhases = (): boolean => on;

/** Writes one phase mark when tracing is on. */
export function tracePhase(label: string): void {
  if (!on) return;
  process.stderr.write(`phase ${performance.now().toFixed(1)} ${((performance.timeOrigin + performance.now()) % 1e6).toFixed(1)} ${process.pid} ${label}\n`);
}

if (on) process.once('exit', () => tracePhase('exit'));

// Chromium's own account of a tab's memory, by owner, for the web benchmark: memory-infra dumps taken
// over the DevTools protocol (Tracing with the category disabled-by-default-memory-infra, then
// Tracing.requestMemoryDump), parsed from the trace's events. Each dump gives, per process, the
// allocators' sizes (malloc, partition_alloc/partitions/{buffer,array_buffer,fast_malloc,layout}, v8,
// blink_gc, blink_objects, discardable, shared_memory, …) and the process totals (resident set,
// private footprint), so the renderers' growth can be attributed to whoever allocated it rather than
// guessed from /proc. Pure parsing here (dumpsFromTrace, topAllocators); the connection is cdp-heaps.ts.

/** One process's part of one memory dump (bytes). */
export interface ProcessDump {
  pid: number;
  /** "Renderer", "Browser", "GPU Process", … (the trace's process_name metadata); "" if absent */
  process: string;
  /** the dump's id in the trace (numbered from 0x0 in the order taken; not Tracing.requestMemoryDump's dumpGuid) */
  guid: string;
  /** when it was taken (the trace's clock, µs) */
  ts: number;
  /** resident set and private footprint (process_totals); 0 where the dump has none */
  resident: number;
  privateFootprint: number;
  /** every allocator node with a size attribute, by its full name ("malloc", "v8/main/heap", …) */
  sizes: Map<string, number>;
}

export interface TraceEvent {
  ph?: string;
  name?: string;
  ts?: number;
  pid?: number;
  id?: string;
  args?: {
    name?: string;
    dumps?: {
      allocators?: Record<string, { attrs?: Record<string, { type?: string; units?: string; value?: string | number }> }>;
      process_totals?: Record<string, string | number>;
    };
  };
}

// memory-infra writes byte counts as hexadecimal strings ("1a2b00")
const hex = (v: string | number | undefined): number => (typeof v === 'number' ? v : v === undefined ? 0 : parseInt(v, 16) || 0);

/**
 * The memory dumps in a trace's events, one entry per process per dump. A process's dump comes as
 * several events of one id (process totals in one, allocators in others): merged here.
 */
export function dumpsFromTrace(events: readonly TraceEvent[]): ProcessDump[] {
  const names = new Map<number, string>();
  for (const e of events) if (e.ph === 'M' && e.name === 'process_name' && e.pid !== undefined) names.set(e.pid, e.args?.name ?? '');
  const byKey = new Map<string, ProcessDump>();
  for (const e of events) {
    const d = e.args?.dumps;
    if (e.ph !== 'v' || !d || e.pid === undefined) continue;
    const guid = normGuid(e.id);
    const key = `${guid} ${e.pid}`;
    let p = byKey.get(key);
    if (!p) byKey.set(key, (p = { pid: e.pid, process: names.get(e.pid) ?? '', guid, ts: e.ts ?? 0, resident: 0, privateFootprint: 0, sizes: new Map() }));
    for (const [name, node] of Object.entries(d.allocators ?? {})) {
      const s = node.attrs?.size;
      if (s && s.units === 'bytes') p.sizes.set(name, hex(s.value));
    }
    const t = d.process_totals;
    if (t) {
      // Linux dumps give the peak resident set (reset at each dump: the peak since the last one) and the private footprint
      p.resident = hex(t.resident_set_bytes ?? t.peak_resident_set_size);
      p.privateFootprint = hex(t.private_footprint_bytes);
    }
  }
  return [...byKey.values()];
}

/** The dumps' ids in the order they were taken. */
export function dumpIds(dumps: readonly ProcessDump[]): string[] {
  const first = new Map<string, number>();
  for (const d of dumps) first.set(d.guid, Math.min(first.get(d.guid) ?? Infinity, d.ts));
  return [...first.keys()].sort((a, b) => first.get(a)! - first.get(b)!);
}

/** A dump id as a number's hex string, whichever way it was written ("0x1a", "26"). */
export function normGuid(id: string | number | undefined): string {
  if (id === undefined) return '';
  const s = String(id);
  try {
    return `0x${BigInt(s).toString(16)}`;
  } catch {
    return s;
  }
}

/**
 * The owners of a dump, summed over its processes: each top-level allocator ("malloc", "v8", …) and,
 * for those named in `expand`, their children one level down (partition_alloc/partitions/buffer, …).
 * A node with no size of its own gets the sum of its children's (memory-infra leaves some parents unsized).
 */
export function topAllocators(dumps: readonly ProcessDump[], expand: readonly string[] = ['partition_alloc/partitions', 'v8', 'v8/workers/heap', 'blink_gc']): Map<string, number> {
  const out = new Map<string, number>();
  const add = (k: string, v: number) => out.set(k, (out.get(k) ?? 0) + v);
  for (const d of dumps) {
    const wanted = new Set<string>();
    for (const name of d.sizes.keys()) {
      const parts = name.split('/');
      wanted.add(parts[0]);
      for (const e of expand) if (name.startsWith(`${e}/`) && name.split('/').length === e.split('/').length + 1) wanted.add(name);
    }
    for (const w of wanted) {
      let v = d.sizes.get(w);
      if (v === undefined) {
        // an unsized parent: the sum of its direct children
        v = 0;
        for (const [name, s] of d.sizes) if (name.startsWith(`${w}/`) && name.split('/').length === w.split('/').length + 1) v += s;
      }
      add(w, v);
    }
  }
  return out;
}

/** One line per owner: size in each column (MB) and the growth of the last column over the first. */
export function allocatorTable(columns: readonly { label: string; owners: Map<string, number> }[], minMb = 0.5): string[] {
  const keys = [...new Set(columns.flatMap((c) => [...c.owners.keys()]))].sort();
  const mb = (x: number) => (x / 1e6).toFixed(1);
  const lines = [`| owner | ${columns.map((c) => `${c.label} MB`).join(' | ')} | last − first MB |`, `|---|${columns.map(() => '---|').join('')}---|`];
  for (const k of keys) {
    const vals = columns.map((c) => c.owners.get(k) ?? 0);
    if (Math.max(...vals) < minMb * 1e6) continue;
    lines.push(`| ${k} | ${vals.map(mb).join(' | ')} | ${vals[vals.length - 1] - vals[0] >= 0 ? '+' : ''}${mb(vals[vals.length - 1] - vals[0])} |`);
  }
  return lines;
}

/** What takes dumps: TabHeaps (cdp-heaps.ts) over the browser's DevTools endpoint. */
export interface Dumper {
  dump(): Promise<string | null>;
}

/**
 * Dumps every `gapMs` (after the previous one completes: a detailed dump walks every process's
 * memory maps and takes a while under load) until stop(); the series, so that the dump nearest the
 * job's peak can be picked once the trace is read (the trace numbers the dumps in the order taken:
 * dumpIds); how many were taken.
 */
export function dumpSeries(d: Dumper, gapMs = 1000): { stop: () => Promise<number> } {
  let taken = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      if (await d.dump()) taken++;
      if (running) await new Promise((r) => setTimeout(r, gapMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return taken;
    },
  };
}

/** The renderers' (or another kind's) dumps of one guid. */
export const dumpOf = (all: readonly ProcessDump[], guid: string, process = 'Renderer'): ProcessDump[] => all.filter((p) => p.guid === normGuid(guid) && p.process === process);

// The JavaScript heaps of a Chromium tab and its workers, for the web benchmark's memory breakdown:
// a raw DevTools-protocol connection (playwright's own session cannot address nested workers such
// as the kernel Web Workers the job worker starts) that attaches to every page and worker target
// and samples Runtime.getHeapUsage: the V8 heap used, and the ArrayBuffer backing stores (where
// WebAssembly memories and read buffers live), each target's peak kept. The same connection runs
// Chromium's memory-infra tracing (memory dumps of every process, read by memory-infra.ts) and the
// full garbage collections taken before the last dump.
// Needs Chromium started with --remote-debugging-port=PORT.
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
// playwright-core's bundled WebSocket client (Node 20 has no global WebSocket; no new dependency)
const { ws: WebSocketClient } = require(join(dirname(require.resolve('playwright-core')), 'lib', 'utilsBundle.js')) as {
  ws: new (url: string, o: object) => { on(e: string, f: (d: unknown) => void): void; once(e: string, f: (d: unknown) => void): void; send(s: string): void; close(): void };
};

export interface HeapPeak {
  /** "page", "worker worker.js", "worker kernels.js" */
  target: string;
  usedJs: number;
  arrayBuffers: number;
}

export class TabHeaps {
  private nextId = 0;
  private readonly waits = new Map<number, (m: { result?: Record<string, unknown>; error?: unknown }) => void>();
  private readonly sessions = new Map<string, { sid: string; label: string }>();
  private readonly peaks = new Map<string, HeapPeak>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private readonly traceEvents: unknown[] = [];
  private traceDone: (() => void) | null = null;

  /** sample allocations (HeapProfiler) in every target attached from now on */
  allocations = false;

  private constructor(private readonly ws: InstanceType<typeof WebSocketClient>) {}

  /**
   * Bytes allocated since attaching, by allocation site (the innermost frame and its two callers),
   * for each target sampled (allocations = true): the `top` largest sites per target.
   */
  async allocationSites(top = 15): Promise<{ target: string; totalMb: number; sites: { site: string; mb: number }[] }[]> {
    interface Node { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: Node[] }
    const out = [];
    for (const s of this.sessions.values()) {
      const r = (await this.send('HeapProfiler.getSamplingProfile', {}, s.sid)) as { profile?: { head: Node } } | null;
      if (!r?.profile) continue;
      const bySite = new Map<string, number>();
      let total = 0;
      const frame = (n: Node) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber + 1}`;
      const walk = (n: Node, path: string[]) => {
        const here = [frame(n), ...path].slice(0, 3);
        if (n.selfSize > 0) {
          const k = here.join(' ← ');
          bySite.set(k, (bySite.get(k) ?? 0) + n.selfSize);
          total += n.selfSize;
        }
        for (const c of n.children) walk(c, here);
      };
      walk(r.profile.head, []);
      const sites = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, top).map(([site, b]) => ({ site, mb: b / 1e6 }));
      out.push({ target: s.label, totalMb: total / 1e6, sites });
    }
    return out;
  }

  static async connect(port: number): Promise<TabHeaps> {
    const v = (await (await fetch(`http://127.0.0.1:${port}/json/version`)).json()) as { webSocketDebuggerUrl: string };
    const ws = new WebSocketClient(v.webSocketDebuggerUrl, { perMessageDeflate: false });
    await new Promise((ok, fail) => {
      ws.once('open', ok);
      ws.once('error', fail);
    });
    const t = new TabHeaps(ws);
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { id?: number; result?: Record<string, unknown>; error?: unknown };
      if (m.id !== undefined) t.waits.get(m.id)?.(m);
      if (m.id !== undefined) t.waits.delete(m.id);
      const ev = m as { method?: string; params?: { value?: unknown[] } };
      if (ev.method === 'Tracing.dataCollected') t.traceEvents.push(...(ev.params?.value ?? []));
      if (ev.method === 'Tracing.tracingComplete') t.traceDone?.();
    });
    return t;
  }

  private send(method: string, params: object = {}, sessionId?: string): Promise<Record<string, unknown> | null> {
    const id = ++this.nextId;
    this.ws.send(JSON.stringify({ id, method, params, sessionId }));
    return new Promise((ok) => this.waits.set(id, (m) => ok(m.error ? null : (m.result ?? null))));
  }

  private async sample(): Promise<void> {
    const r = (await this.send('Target.getTargets')) as { targetInfos: { targetId: string; type: string; url: string }[] } | null;
    for (const t of r?.targetInfos ?? []) {
      if (this.sessions.has(t.targetId) || (t.type !== 'page' && t.type !== 'worker')) continue;
      const a = (await this.send('Target.attachToTarget', { targetId: t.targetId, flatten: true })) as { sessionId?: string } | null;
      if (!a?.sessionId) continue;
      const label = t.type === 'page' ? 'page' : `worker ${t.url.split('/').pop()}`;
      this.sessions.set(t.targetId, { sid: a.sessionId, label });
      if (this.allocations) {
        // every allocation sampled, the collected ones too: where the garbage comes from
        await this.send('HeapProfiler.enable', {}, a.sessionId);
        await this.send('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }, a.sessionId);
      }
    }
    for (const [id, s] of this.sessions) {
      const u = (await this.send('Runtime.getHeapUsage', {}, s.sid)) as { usedSize: number; backingStorageSize?: number } | null;
      if (!u) {
        this.sessions.delete(id); // the worker ended
        continue;
      }
      const p = this.peaks.get(s.label) ?? { target: s.label, usedJs: 0, arrayBuffers: 0 };
      p.usedJs = Math.max(p.usedJs, u.usedSize);
      p.arrayBuffers = Math.max(p.arrayBuffers, u.backingStorageSize ?? 0);
      this.peaks.set(s.label, p);
    }
  }

  /**
   * Chromium's memory-infra (memory-infra.ts): tracing with only its category on, every process
   * included; dumps are taken when asked (dump()), none periodically.
   */
  async startMemoryTrace(): Promise<boolean> {
    const r = await this.send('Tracing.start', {
      transferMode: 'ReportEvents',
      traceConfig: { recordMode: 'recordAsMuchAsPossible', includedCategories: ['disabled-by-default-memory-infra'], excludedCategories: ['*'], memoryDumpConfig: { triggers: [] } },
    });
    return r !== null;
  }

  /** A detailed memory dump of every process now; its guid (null if Chromium refused, e.g. one already in progress). */
  async dump(): Promise<string | null> {
    const r = (await this.send('Tracing.requestMemoryDump', { deterministic: false, levelOfDetail: 'detailed' })) as { dumpGuid?: string; success?: boolean } | null;
    return r?.success ? (r.dumpGuid ?? null) : null;
  }

  /** A full garbage collection in the page and every worker attached so far (HeapProfiler.collectGarbage: V8 and Blink's Oilpan heap). */
  async collectGarbage(): Promise<void> {
    for (const s of this.sessions.values()) await this.send('HeapProfiler.collectGarbage', {}, s.sid);
  }

  /** Ends the trace and returns its events (the dumps are among them). */
  async endMemoryTrace(): Promise<unknown[]> {
    // a dump's allocator events are written after requestMemoryDump answers (its totals are not):
    // ending the trace at once loses the last dump's allocators (seen on Chromium 156 under load)
    await new Promise((r) => setTimeout(r, 3000));
    const done = new Promise<void>((ok) => (this.traceDone = ok));
    await this.send('Tracing.end');
    await Promise.race([done, new Promise((ok) => setTimeout(ok, 60_000))]);
    return this.traceEvents.splice(0);
  }

  /** Samples every `ms` until stop(). */
  start(ms = 200): void {
    this.running = true;
    const tick = async () => {
      if (!this.running) return;
      await this.sample().catch(() => undefined);
      if (this.running) this.timer = setTimeout(tick, ms);
    };
    void tick();
  }

  /** Stops sampling; the heaps' peaks. */
  stop(): HeapPeak[] {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    return [...this.peaks.values()];
  }

  close(): void {
    this.stop();
    this.ws.close();
  }
}

/** A free TCP port on 127.0.0.1 (for Chromium's DevTools endpoint). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

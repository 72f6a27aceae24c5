// The Redis side of the job queue: the `--queue redis://HOST:PORT[/DB]` URL, a reachability probe
// that fails fast with the URL in the error, and the socket client BullMQ talks through.
//
// Why a client of our own: bullmq 6 takes its Redis driver as an optional peer dependency (ioredis,
// node-redis or Bun's built-in client) and none is installed. BullMQ ships an adapter for Bun's
// client that needs only `send(command, args)`, `connect()`, `close()`, `duplicate()` and the
// `connected` / `onconnect` / `onclose` members; `RespSocket` provides exactly those over
// node:net in RESP2, and `bullmqFor()` registers it as BullMQ's client factory. Retries,
// reconnection with back-off, Lua scripts, MULTI/EXEC and the blocking commands stay BullMQ's.
//
// Replies: simple and bulk strings → string (UTF-8), integers → number, arrays → array,
// null bulk/array → null, error replies → a rejected promise (inside an EXEC array: an Error).
import { createConnection, type Socket } from 'node:net';
import { ConfigError, IoError } from '../core/errors.js';

export interface RedisTarget {
  /** the URL as the user gave it (errors name it) */
  url: string;
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
}

/** Parses `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (port 6379 and db 0 by default). */
export function parseQueueUrl(url: string): RedisTarget {
  const bad = (why: string) => new ConfigError('bad_option', `invalid queue URL: ${why}`, { field: '--queue', expected: 'redis://HOST:PORT[/DB]', found: url });
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad('not a URL');
  }
  if (u.protocol !== 'redis:') throw bad(`scheme ${u.protocol} (only redis: is supported; for TLS use a tunnel)`);
  if (!u.hostname) throw bad('no host');
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 15 || !/^\d*$/.test(dbText)) throw bad(`database '${dbText}' (expected 0–15)`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    // errors name the URL; a password in it is not printed
    url: u.password ? url.replace(`:${u.password}@`, ':***@') : url,
    host,
    port,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

type Reply = string | number | null | Error | Reply[];
type Arg = string | number | Buffer;

const CRLF = Buffer.from('\r\n');

function encode(command: string, args: readonly Arg[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length + 1}\r\n`)];
  for (const a of [command, ...args]) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8');
    parts.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
  }
  return Buffer.concat(parts);
}

/** Parses one reply at `at`; undefined when the buffer holds only part of it. */
function parseReply(buf: Buffer, at: number): { value: Reply; next: number } | undefined {
  const eol = buf.indexOf(CRLF, at);
  if (eol < 0) return undefined;
  const type = buf[at];
  const line = buf.toString('utf8', at + 1, eol);
  switch (type) {
    case 0x2b: // '+'
      return { value: line, next: eol + 2 };
    case 0x2d: // '-'
      return { value: new Error(line), next: eol + 2 };
    case 0x3a: // ':'
      return { value: Number(line), next: eol + 2 };
    case 0x24: {
      // '$'
      const n = Number(line);
      if (n < 0) return { value: null, next: eol + 2 };
      if (buf.length < eol + 2 + n + 2) return undefined;
      return { value: buf.toString('utf8', eol + 2, eol + 2 + n), next: eol + 2 + n + 2 };
    }
    case 0x2a: {
      // '*'
      const n = Number(line);
      if (n < 0) return { value: null, next: eol + 2 };
      const items: Reply[] = [];
      let p = eol + 2;
      for (let i = 0; i < n; i++) {
        const r = parseReply(buf, p);
        if (!r) return undefined;
        items.push(r.value);
        p = r.next;
      }
      return { value: items, next: p };
    }
    default:
      throw new Error(`unexpected RESP reply type 0x${(type ?? 0).toString(16)}`);
  }
}

/** One Redis connection with the members BullMQ's Bun adapter calls (see the file comment). */
export class RespSocket {
  connected = false;
  onconnect: () => void = () => {};
  onclose: (error?: Error) => void = () => {};
  onerror: (error: Error) => void = () => {};
  private socket: Socket | null = null;
  private pending: { resolve: (v: unknown) => void; reject: (e: Error) => void }[] = [];
  private buf: Buffer = Buffer.alloc(0);

  constructor(
    readonly target: RedisTarget,
    private readonly connectTimeoutMs = 10_000,
  ) {}

  get url(): string {
    return this.target.url;
  }

  async duplicate(): Promise<RespSocket> {
    return new RespSocket(this.target, this.connectTimeoutMs);
  }

  connect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const s = createConnection({ host: this.target.host, port: this.target.port });
      this.socket = s;
      s.setNoDelay(true);
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        s.destroy();
        reject(e);
      };
      const timer = setTimeout(() => fail(new Error(`Connection has failed: no answer within ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
      s.on('data', (chunk) => this.onData(chunk));
      s.on('error', (e) => {
        if (!settled) fail(e);
        else this.onerror(e);
      });
      s.on('close', () => {
        clearTimeout(timer);
        const was = this.connected;
        this.connected = false;
        this.socket = null;
        const err = new Error('Connection closed');
        for (const p of this.pending.splice(0)) p.reject(err);
        this.buf = Buffer.alloc(0);
        if (!settled) fail(new Error('Connection closed before it was ready'));
        else if (was) this.onclose(err);
      });
      s.once('connect', () => {
        this.connected = true;
        const hello: Promise<unknown>[] = [];
        if (this.target.password !== undefined) {
          hello.push(this.send('AUTH', this.target.username ? [this.target.username, this.target.password] : [this.target.password]));
        }
        if (this.target.db) hello.push(this.send('SELECT', [this.target.db]));
        Promise.all(hello).then(
          () => {
            clearTimeout(timer);
            if (settled) return;
            settled = true;
            resolve();
            this.onconnect();
          },
          (e: Error) => {
            clearTimeout(timer);
            fail(e);
          },
        );
      });
    });
  }

  close(): void {
    this.socket?.end();
    this.socket?.destroy();
  }

  send(command: string, args: readonly Arg[] = []): Promise<unknown> {
    const s = this.socket;
    if (!s || !this.connected) return Promise.reject(new Error('Connection is closed.'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      s.write(encode(command, args));
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    for (;;) {
      let r: { value: Reply; next: number } | undefined;
      try {
        r = parseReply(this.buf, at);
      } catch (e) {
        this.socket?.destroy(e as Error);
        return;
      }
      if (!r) break;
      at = r.next;
      const p = this.pending.shift();
      if (!p) continue;
      if (r.value instanceof Error) p.reject(r.value);
      else p.resolve(r.value);
    }
    this.buf = at >= this.buf.length ? Buffer.alloc(0) : this.buf.subarray(at);
  }
}

/**
 * Connects once, checks the server answers PING, and returns its version; any failure is an
 * IoError naming the URL (BullMQ itself would retry forever in silence).
 */
export async function probeRedis(target: RedisTarget, timeoutMs = 5000): Promise<string> {
  const s = new RespSocket(target, timeoutMs);
  try {
    await s.connect();
    const pong = await s.send('PING');
    if (pong !== 'PONG') throw new Error(`PING answered ${JSON.stringify(pong)}`);
    const info = String(await s.send('INFO', ['server']));
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
  } catch (e) {
    throw new IoError('io', `cannot reach Redis at ${target.url}`, {
      field: '--queue',
      expected: 'a Redis server answering PING',
      found: (e as Error).message || String(e),
      hint: `is redis-server running on ${target.host}:${target.port} and reachable from this machine?`,
    });
  } finally {
    s.close();
  }
}

export type Bullmq = typeof import('bullmq');

let loaded: Bullmq | null = null;

/**
 * BullMQ, imported on first use (commands without --queue never load it), with `RespSocket`
 * installed as its Redis client. Pass the returned `connection` to Queue/Worker/QueueEvents.
 */
export async function bullmqFor(target: RedisTarget): Promise<{ bullmq: Bullmq; connection: { host: string; port: number; db: number; url: string } }> {
  if (!loaded) {
    const m = await import('bullmq');
    m.RedisConnection.clientFactory = (opts) => {
      const o = opts as { host: string; port: number; db?: number; username?: string; password?: string; url?: string };
      const t: RedisTarget = { url: o.url ?? `redis://${o.host}:${o.port}/${o.db ?? 0}`, host: o.host, port: o.port, db: o.db ?? 0, username: o.username, password: o.password };
      return m.createBunRedisClient(new RespSocket(t) as never);
    };
    loaded = m;
  }
  return { bullmq: loaded, connection: { host: target.host, port: target.port, db: target.db, url: target.url, ...(target.username ? { username: target.username } : {}), ...(target.password ? { password: target.password } : {}) } };
}

// The Redis side of the job queue: the `--queue redis://HOST:PORT[/DB]` URL, a reachability probe
// that fails fast with the URL in the error (BullMQ itself would retry in silence), and BullMQ,
// imported on first use so that commands without --queue never load it. BullMQ talks to Redis
// through ioredis (its driver, a peer dependency).
import { ConfigError, IoError } from '../../core/errors.js';

export interface RedisTarget {
  /** the URL as the user gave it, password masked (errors name it) */
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
  if (!/^\d*$/.test(dbText) || db > 15) throw bad(`database '${dbText}' (expected 0–15)`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    url: u.password ? url.replace(`:${u.password}@`, ':***@') : url,
    host,
    port,
    db,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

/** ioredis connection options for a target. */
function redisOptions(t: RedisTarget): { host: string; port: number; db: number; username?: string; password?: string } {
  return { host: t.host, port: t.port, db: t.db, ...(t.username ? { username: t.username } : {}), ...(t.password ? { password: t.password } : {}) };
}

/**
 * Connects once (no retries), checks the server answers PING, and returns its version; any failure
 * is an IoError naming the URL.
 */
export async function probeRedis(target: RedisTarget, timeoutMs = 5000): Promise<string> {
  const { Redis } = await import('ioredis');
  const r = new Redis({ ...redisOptions(target), lazyConnect: true, connectTimeout: timeoutMs, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false });
  r.on('error', () => {}); // reported through the rejected promises below
  try {
    await r.connect();
    const pong = await r.ping();
    if (pong !== 'PONG') throw new Error(`PING answered ${JSON.stringify(pong)}`);
    const info = await r.info('server');
    return /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
  } catch (e) {
    throw new IoError('io', `cannot reach Redis at ${target.url}`, {
      field: '--queue',
      expected: 'a Redis server answering PING',
      found: (e as Error).message || String(e),
      hint: `is redis-server running on ${target.host}:${target.port} and reachable from this machine?`,
    });
  } finally {
    r.disconnect();
  }
}

export type Bullmq = typeof import('bullmq');

/** BullMQ (imported on first use) and the connection options to give its Queue/Worker/QueueEvents. */
export async function bullmqFor(target: RedisTarget): Promise<{ bullmq: Bullmq; connection: ReturnType<typeof redisOptions> }> {
  return { bullmq: await import('bullmq'), connection: redisOptions(target) };
}

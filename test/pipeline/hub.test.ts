// Models by Hub id, as a user's machine sees the Hub: a local HTTP server on 127.0.0.1 serves the
// embedded model in the Hub's URL layout (the three endpoints @huggingface/hub calls: model info
// /api/models/{id}/revision/{rev}, tree listing /api/models/{id}/tree/{rev}, downloads
// /{id}/resolve/{rev}/{path} with range requests), HF_ENDPOINT points at it, and the CLI is run on
// `org/name`: the cache gets huggingface_hub's layout, a token is sent, an interrupted download
// resumes with a range request, offline mode uses the cache without a request, and errors say why.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { cliIn } from '../cli-run.js';
import { hubCacheDir, parseHubId } from '../../src/pipeline/hub.js';
import { loadModel } from '../../src/model/load.js';
import { tempDir } from '../helpers.js';

const MODEL = 'assets/default-model';
const REPO = 'bitscale-test/tiny-llama';
const SHA = 'c0ffee'.padEnd(40, '0');
const TOKEN = 'hf_test_token';

const files = readdirSync(MODEL).filter((f) => !f.endsWith('.md')).map((f) => ({ path: f, data: readFileSync(join(MODEL, f)) }));
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Seen {
  url: string;
  range?: string;
  auth?: string;
}

function hub(opts: { gated?: boolean } = {}) {
  const seen: Seen[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    seen.push({ url: url.pathname, range: req.headers.range, auth: req.headers.authorization });
    if (opts.gated && req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Access to this model is restricted' }));
      return;
    }
    const json = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
    if (url.pathname === `/api/models/${REPO}/revision/main`) return json({ _id: 'x', id: REPO, sha: SHA, siblings: files.map((f) => ({ rfilename: f.path })) });
    if (url.pathname === `/api/models/${REPO}/tree/${SHA}`) {
      return json(files.map((f) => ({ type: 'file', path: f.path, size: f.data.length, oid: gitOid(f.data), ...(f.path.endsWith('.safetensors') ? { lfs: { oid: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}) })));
    }
    const m = new RegExp(`^/${REPO}/resolve/([^/]+)/(.+)$`).exec(url.pathname);
    const f = m && files.find((x) => x.path === m[2]);
    if (!f) {
      res.writeHead(404, { 'x-error-code': m ? 'EntryNotFound' : 'RepoNotFound', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found' }));
      return;
    }
    const r = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (r) {
      const a = Number(r[1]);
      const b = r[2] ? Number(r[2]) : f.data.length - 1;
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${f.data.length}`, 'content-length': String(b - a + 1), 'accept-ranges': 'bytes', etag: `"${gitOid(f.data)}"` }).end(f.data.subarray(a, b + 1));
      return;
    }
    res.writeHead(200, { 'content-length': String(f.data.length), 'accept-ranges': 'bytes' }).end(f.data);
  });
  return new Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }>((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({ url: `http://127.0.0.1:${port}`, seen, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}

test('Hub ids and the cache directory, as huggingface_hub reads them', () => {
  assert.deepEqual(parseHubId('Qwen/Qwen2.5-0.5B'), { id: 'Qwen/Qwen2.5-0.5B', revision: 'main' });
  assert.deepEqual(parseHubId('org/name@v1.0'), { id: 'org/name', revision: 'v1.0' });
  assert.equal(parseHubId('models/x.gguf'), null);
  assert.equal(parseHubId('a/b/c'), null);
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c' }, '/home/u'), '/c');
  assert.equal(hubCacheDir({ HF_HOME: '/h' }, '/home/u'), '/h/hub');
  assert.equal(hubCacheDir({}, '/home/u'), '/home/u/.cache/huggingface/hub');
});

test('bitscale on a Hub id: download into the HF cache layout, token sent, resume by range, offline from the cache', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-hub-');
  const server = await hub({ gated: true });
  const env = { HF_ENDPOINT: server.url, HF_HOME: join(dir, 'hf'), HF_HUB_CACHE: undefined, HF_TOKEN: TOKEN, HF_HUB_OFFLINE: undefined };
  try {
    // 1. inspect by id: everything the model needs is fetched, then it loads as a local folder
    const a = await cliIn(['inspect', REPO, '--json'], process.cwd(), env);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(JSON.parse(a.stdout).format, 'hf');
    const storage = join(dir, 'hf', 'hub', 'models--bitscale-test--tiny-llama');
    assert.equal(readFileSync(join(storage, 'refs', 'main'), 'utf8'), SHA);
    const snap = join(storage, 'snapshots', SHA);
    for (const f of files) {
      assert.ok(lstatSync(join(snap, f.path)).isSymbolicLink(), `${f.path} is a link into blobs/`);
      assert.match(readlinkSync(join(snap, f.path)), /^\.\.\/\.\.\/blobs\//);
      assert.deepEqual(readFileSync(join(snap, f.path)), f.data);
    }
    const st = files.find((f) => f.path === 'model.safetensors')!;
    assert.ok(existsSync(join(storage, 'blobs', sha256(st.data))), 'LFS blobs are named by their sha256');
    assert.ok(server.seen.length > 0 && server.seen.every((s) => s.auth === `Bearer ${TOKEN}`), 'HF_TOKEN is sent');

    // 2. an interrupted download resumes: a partial .incomplete blob is continued with a range request
    const blob = join(storage, 'blobs', sha256(st.data));
    unlinkSync(blob);
    unlinkSync(join(snap, 'model.safetensors'));
    const half = Math.floor(st.data.length / 2);
    writeFileSync(`${blob}.incomplete`, st.data.subarray(0, half));
    server.seen.length = 0;
    const b = await cliIn(['quantize', REPO, '--out', join(dir, 'q.gguf'), '--scheme', 'q4_0', '--no-verify', '--quiet'], process.cwd(), env);
    assert.equal(b.status, 0, b.stderr);
    assert.ok(server.seen.some((s) => s.url.endsWith('/model.safetensors') && s.range === `bytes=${half}-${st.data.length - 1}`), `range request: ${JSON.stringify(server.seen)}`);
    assert.deepEqual(readFileSync(blob), st.data);
    assert.ok(!server.seen.some((s) => s.url.endsWith('/config.json') && s.url.includes('/resolve/')), 'cached files are not fetched again');
    // the Hub model quantizes to the same tensors as the local folder (metadata names the source folder)
    const c = await cliIn(['quantize', MODEL, '--out', join(dir, 'local.gguf'), '--scheme', 'q4_0', '--no-verify', '--quiet'], process.cwd(), env);
    assert.equal(c.status, 0, c.stderr);
    const [x, y] = [await loadModel(join(dir, 'q.gguf')), await loadModel(join(dir, 'local.gguf'))];
    try {
      assert.deepEqual([...x.tensors.keys()], [...y.tensors.keys()]);
      for (const [n, t] of x.tensors) assert.deepEqual(await t.read(), await y.tensors.get(n)!.read(), n);
    } finally {
      await x.close();
      await y.close();
    }

    // 3. without the token a gated model is refused with a hint
    const d = await cliIn(['inspect', 'bitscale-test/other', '--json'], process.cwd(), { ...env, HF_TOKEN: undefined });
    assert.equal(d.status, 1);
    assert.match(d.stderr, /cannot reach the Hub for model bitscale-test\/other@main/);
    assert.match(d.stderr, /HF_TOKEN/);
  } finally {
    await server.close();
  }
  // 4. offline: the cached snapshot is used with the server gone; an uncached model is a typed error
  const off = { ...env, HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9' };
  const e = await cliIn(['inspect', REPO, '--json'], process.cwd(), off);
  assert.equal(e.status, 0, e.stderr);
  const f = await cliIn(['inspect', 'bitscale-test/never-downloaded', '--json'], process.cwd(), off);
  assert.equal(f.status, 1);
  assert.match(f.stderr, /not in the Hugging Face cache, and offline mode forbids downloading it/);
});

test('a missing local path that looks like a Hub id gets a hint, not just "does not exist"', async () => {
  await assert.rejects(loadModel('Qwen/Qwen2.5-0.5B'), (e: Error & { context?: { hint?: string } }) => /Hub|Hugging Face/.test(e.context?.hint ?? ''));
});

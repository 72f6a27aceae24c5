// `bitscale web`'s server: static files of the app folder on this machine only, nothing outside the
// folder, the cross-origin isolation headers onnxruntime-web's threads need, and the CLI command
// that prints the URL and stops on Ctrl-C. No browser needed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveWebApp, type WebServer } from '../../src/pipeline/web-serve.js';
import { ConfigError } from '../../src/core/errors.js';

let root = '';
let server: WebServer;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'bitscale-webserve-'));
  mkdirSync(join(root, 'app', 'ort'), { recursive: true });
  writeFileSync(join(root, 'app', 'index.html'), '<!doctype html><title>app</title>');
  writeFileSync(join(root, 'app', 'ort', 'x.wasm'), new Uint8Array([0, 97, 115, 109]));
  writeFileSync(join(root, 'secret.txt'), 'outside the app folder');
  server = await serveWebApp(join(root, 'app'));
});
after(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

/** A raw request (the path is sent as written, not normalised as fetch would). */
function get(path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const r = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

test('the app folder is served with its types and the cross-origin isolation headers; on 127.0.0.1 only', async () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const index = await get('/');
  assert.equal(index.status, 200);
  assert.match(index.body, /<title>app<\/title>/);
  assert.equal(index.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(index.headers['cross-origin-opener-policy'], 'same-origin');
  assert.equal(index.headers['cross-origin-embedder-policy'], 'require-corp');
  const wasm = await get('/ort/x.wasm');
  assert.equal(wasm.status, 200);
  assert.equal(wasm.headers['content-type'], 'application/wasm');
  assert.equal((await get('/missing.js')).status, 404);
  assert.equal((await get('/ort')).status, 404, 'no directory listings');
});

test('nothing outside the app folder, no other methods, no other hosts', async () => {
  for (const p of ['/%2e%2e/secret.txt', '/ort/%2e%2e/%2e%2e/secret.txt', '/..%2fsecret.txt']) {
    const r = await get(p);
    assert.ok(r.status === 403 || r.status === 404, `${p}: ${r.status}`);
    assert.doesNotMatch(r.body, /outside the app folder/);
  }
  assert.equal((await get('/', 'POST')).status, 405);
  await assert.rejects(serveWebApp(join(root, 'app'), 0, '0.0.0.0'), (e: unknown) => e instanceof ConfigError && e.code === 'bad_option' && /--host/.test(e.message));
});

test('`bitscale web --port 0` prints the URL, serves the built app, and stops on SIGINT', { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'web', '--port', '0'], { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c) => {
        out += c;
        const m = /bitscale web: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`exited ${code}: ${out}${err}`)));
    });
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<script type="module" src="app.js">/);
    assert.equal((await fetch(new URL('worker.js', url))).status, 200);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 0, `exit code after SIGINT (stderr: ${err})`);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

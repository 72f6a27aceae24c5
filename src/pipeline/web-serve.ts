// `bitscale web`: serves the browser app (dist/web, built by `npm run build`) on localhost. A plain
// static server: GET/HEAD of files under the app folder, nothing else, no directory listings. It
// sends the cross-origin isolation headers (COOP/COEP) so the page may use threads
// (SharedArrayBuffer) in onnxruntime-web; any other static host works too, single-threaded.
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigError, IoError } from '../core/errors.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The package root (where package.json is), from src/pipeline or dist/pipeline. */
function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

/** The built app's folder; builds it first in a source checkout where it is missing. */
export async function webAppDir(opts: { rebuild?: boolean } = {}): Promise<string> {
  const root = packageRoot();
  const dir = join(root, 'dist', 'web');
  const builder = join(root, 'web', 'build.mjs');
  if ((opts.rebuild || !existsSync(join(dir, 'index.html'))) && existsSync(builder)) {
    const m = (await import(pathToFileURL(builder).href)) as { buildWeb: (out: string) => Promise<string> };
    await m.buildWeb(dir);
  }
  if (!existsSync(join(dir, 'index.html'))) {
    throw new IoError('missing_file', 'the browser app is not built', { file: dir, hint: 'run `npm run build` in the bitscale folder' });
  }
  return dir;
}

export interface WebServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1:`port` (0: any free port). */
export async function serveWebApp(dir: string, port = 0, host = '127.0.0.1'): Promise<WebServer> {
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) throw new ConfigError('bad_option', 'the app is served on this machine only', { field: '--host', expected: '127.0.0.1, localhost or ::1', found: host });
  const rootDir = resolve(dir);
  const server = createServer((req, res) => {
    const send = (code: number, text: string) => {
      res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'method not allowed');
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      return send(400, 'bad request');
    }
    const file = normalize(join(rootDir, path.endsWith('/') ? `${path}index.html` : path));
    if (file !== rootDir && !file.startsWith(rootDir + sep)) return send(403, 'forbidden');
    stat(file).then(
      (st) => {
        if (!st.isFile()) return send(404, 'not found');
        res.writeHead(200, {
          'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
          'content-length': st.size,
          'cache-control': 'no-cache',
          'cross-origin-opener-policy': 'same-origin',
          'cross-origin-embedder-policy': 'require-corp',
          'cross-origin-resource-policy': 'same-origin',
          'x-content-type-options': 'nosniff',
        });
        if (req.method === 'HEAD') return res.end();
        createReadStream(file).pipe(res);
      },
      () => send(404, 'not found'),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => ok());
  });
  const addr = server.address();
  const p = typeof addr === 'object' && addr ? addr.port : port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${p}/`,
    server,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

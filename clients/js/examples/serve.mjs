// Serves clients/js over loopback HTTP for the example pages (ES modules do not load from
// file://), with React's browser builds under /examples/vendor/. The browser test uses it
// too (test/browser/examples.test.mjs).
//
//   node clients/js/examples/serve.mjs [--port 8000]
//   open http://127.0.0.1:8000/examples/browser.html?url=ws://127.0.0.1:8080/ws/user&token=…
//
// React comes from node_modules if it is installed there, else from Debian's node-react and
// node-react-dom (NODE_SHARE, default /usr/share/nodejs). Nothing is fetched from a CDN.

import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const CLIENT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.mts': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
};

/** The directory of an installed package: node_modules first, then Debian's location. */
export function packageDirectory(name) {
  try {
    return dirname(createRequire(import.meta.url).resolve(`${name}/package.json`));
  } catch {
    return join(process.env.NODE_SHARE || '/usr/share/nodejs', name);
  }
}

/**
 * Starts the server on 127.0.0.1 (port 0: any free one). Resolves to { port, url(path),
 * close() }. `/examples/vendor/react/…` and `/examples/vendor/react-dom/…` map to those
 * packages; everything else to clients/js.
 */
export function serveExamples({ port = 0, react = packageDirectory('react'), reactDom = packageDirectory('react-dom') } = {}) {
  const mounts = [
    ['/examples/vendor/react-dom/', reactDom],
    ['/examples/vendor/react/', react],
    ['/', CLIENT_ROOT],
  ];
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
    const [prefix, root] = mounts.find(([mount]) => path.startsWith(mount));
    const file = normalize(join(root, path.slice(prefix.length)));
    const inside = file === normalize(root) || file.startsWith(normalize(root).replace(/\/?$/, sep));
    if (request.method !== 'GET' || !inside || path.includes('\0')) {
      response.writeHead(request.method === 'GET' ? 403 : 405).end();
      return;
    }
    try {
      const info = await stat(file);
      if (!info.isFile()) throw new Error('not a file');
      response.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'content-length': info.size,
        'cache-control': 'no-store',
      });
      createReadStream(file).pipe(response);
    } catch {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: ${path}\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address();
      resolve({
        port: bound,
        url: (path) => `http://127.0.0.1:${bound}${path}`,
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const at = process.argv.indexOf('--port');
  const { url } = await serveExamples({ port: at > 0 ? Number(process.argv[at + 1]) : 8000 });
  console.log(`serving clients/js at ${url('/')}: ${url('/examples/browser.html')}, ${url('/examples/react.html')}`);
}

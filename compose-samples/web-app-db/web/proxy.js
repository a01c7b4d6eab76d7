'use strict';
// The front: serves public/ and forwards /api/* to the API (API_URL) — Node core modules only.
const http = require('http');
const fs = require('fs');
const path = require('path');

const port = Number(process.env.PORT || 8080);
const api = new URL(process.env.API_URL || 'http://app:5000');
const root = path.join(__dirname, 'public');
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css' };

function proxy(req, res) {
  const upstream = http.request({
    host: api.hostname, port: api.port, method: req.method,
    path: req.url.replace(/^\/api/, '') || '/', headers: { ...req.headers, host: api.host },
  }, up => { res.writeHead(up.statusCode, up.headers); up.pipe(res); });
  upstream.on('error', err => {
    res.writeHead(502, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: `upstream: ${err.message}` }));
  });
  req.pipe(upstream);
}

function serveStatic(req, res) {
  const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const file = path.join(root, rel === '/' ? 'index.html' : path.normalize(rel));
  if (!file.startsWith(root)) { res.writeHead(403); return res.end(); }
  fs.readFile(file, (err, data) => {
    if (err) { res.writeHead(404, { 'Content-Type': 'text/plain' }); return res.end('not found\n'); }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(data);
  });
}

const server = http.createServer((req, res) => {
  console.log(`${req.method} ${req.url}`);
  if (req.url === '/api' || req.url.startsWith('/api/')) return proxy(req, res);
  return serveStatic(req, res);
});
server.listen(port, '0.0.0.0', () => console.log(`web on :${port}, API at ${api.href}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

'use strict';
// Serves the items table that the migration job created; refuses to start without it.
const http = require('http');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 3001);
const pool = new Pool({ max: 4 });

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/healthz') {
    await pool.query('SELECT 1 FROM items LIMIT 1');
    return send(res, 200, { ok: true });
  }
  if (url.pathname === '/items') {
    const { rows } = await pool.query('SELECT id, name, price_cents, stock FROM items ORDER BY id');
    return send(res, 200, rows);
  }
  if (url.pathname === '/migrations') {
    const { rows } = await pool.query('SELECT version FROM schema_migrations ORDER BY version');
    return send(res, 200, rows.map(r => r.version));
  }
  return send(res, 404, { error: 'not found' });
}

async function main() {
  // the migration job has finished before we start; check that its table is really there
  const { rows } = await pool.query("SELECT to_regclass('public.items') AS t");
  if (!rows[0].t) throw new Error('table items is missing: did the migration job run?');
  const server = http.createServer((req, res) => {
    handle(req, res).catch(err => send(res, 500, { error: err.message }));
  });
  server.listen(port, '0.0.0.0', () => console.log(`app listening on :${port}`));
  process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
}

main().catch(err => { console.error(err.message); process.exit(1); });

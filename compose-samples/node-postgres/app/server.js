'use strict';
// A tiny JSON API: every GET / records a visit in PostgreSQL and returns the count.
// Connection settings come from the standard PG* environment variables.
const http = require('http');
const { Pool } = require('pg');

const port = Number(process.env.PORT || 3000);
const pool = new Pool({ max: 4 });

async function migrate() {
  await pool.query(`CREATE TABLE IF NOT EXISTS visits (
    id serial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    path text NOT NULL)`);
}

function send(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
  res.end(data);
}

async function handle(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/healthz') {
    await pool.query('SELECT 1');
    return send(res, 200, { ok: true });
  }
  if (url.pathname === '/' || url.pathname === '/visits') {
    await pool.query('INSERT INTO visits (path) VALUES ($1)', [url.pathname]);
    const { rows } = await pool.query(
      'SELECT count(*)::int AS visits, version() AS server, current_database() AS database FROM visits');
    return send(res, 200, rows[0]);
  }
  return send(res, 404, { error: 'not found' });
}

async function main() {
  for (let attempt = 1; ; attempt++) {
    try { await migrate(); break; } catch (err) {
      if (attempt >= 30) throw err;
      console.error(`database not ready (${err.message}), retrying`);
      await new Promise(r => setTimeout(r, 1000));
    }
  }
  const server = http.createServer((req, res) => {
    handle(req, res).catch(err => send(res, 500, { error: err.message }));
  });
  server.listen(port, '0.0.0.0', () => console.log(`api listening on :${port}`));
  const stop = () => server.close(() => pool.end().then(() => process.exit(0)));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch(err => { console.error(err); process.exit(1); });

"""The notes API: JSON over HTTP (``http.server``) on top of PostgreSQL (``psycopg2``).

- ``GET /notes`` -> list of notes; ``POST /notes`` with ``{"title", "body"}`` -> the new note;
- ``GET /healthz`` -> 200 when the database answers.
"""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg2

DSN = os.environ.get("DATABASE_URL", "postgresql://notes:notes@db:5432/notes")


def query(sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg2.connect(DSN, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        if cur.description is None:
            return []
        names = [c.name for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        try:
            if self.path == "/healthz":
                query("SELECT 1")
                return self._send(200, {"ok": True})
            if self.path == "/notes":
                return self._send(200, query(
                    "SELECT id, title, body, created FROM notes ORDER BY id"))
            return self._send(404, {"error": "not found"})
        except psycopg2.Error as exc:
            return self._send(503, {"error": str(exc).strip()})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/notes":
            return self._send(404, {"error": "not found"})
        try:
            doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            title = str(doc["title"])
        except (ValueError, KeyError, TypeError):
            return self._send(400, {"error": "send JSON with a 'title'"})
        rows = query("INSERT INTO notes (title, body) VALUES (%s, %s) "
                     "RETURNING id, title, body, created", (title, str(doc.get("body", ""))))
        return self._send(201, rows[0])

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.address_string()} {fmt % args}")


def main() -> None:
    for attempt in range(30):  # the healthcheck of db can be a moment ahead of real readiness
        try:
            query("SELECT 1")
            break
        except psycopg2.OperationalError as exc:
            print(f"database not ready ({str(exc).strip()}), attempt {attempt + 1}")
            time.sleep(1)
    port = int(os.environ.get("PORT", "5000"))
    print(f"notes API on :{port}")
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()

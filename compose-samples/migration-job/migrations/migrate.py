"""Apply ``NNN_*.sql`` in order, each once, in its own transaction; exit 0 when up to date.

Applied versions are recorded in ``schema_migrations``; running again applies nothing, so the
job is safe on every ``up``. A failing migration rolls back and exits 1, and the app (which
waits for ``service_completed_successfully``) then does not start.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psycopg2

DSN = os.environ.get("DATABASE_URL", "postgresql://shop:shop@db:5432/shop")
HERE = Path(__file__).resolve().parent


def connect() -> psycopg2.extensions.connection:
    for attempt in range(30):
        try:
            return psycopg2.connect(DSN, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            print(f"database not ready ({str(exc).strip()}), attempt {attempt + 1}")
            time.sleep(1)
    sys.exit("database never became ready")


def main() -> int:
    conn = connect()
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                    " version text PRIMARY KEY, applied timestamptz NOT NULL DEFAULT now())")
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
    pending = [p for p in sorted(HERE.glob("[0-9]*_*.sql")) if p.stem not in done]
    for path in pending:
        print(f"applying {path.name}")
        try:
            with conn, conn.cursor() as cur:
                cur.execute(path.read_text())
                cur.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
        except psycopg2.Error as exc:
            print(f"migration {path.name} failed: {str(exc).strip()}", file=sys.stderr)
            return 1
    print(f"database up to date ({len(done) + len(pending)} migrations, {len(pending)} new)")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

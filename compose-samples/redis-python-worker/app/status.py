"""HTTP status endpoint for the queue (standard library ``http.server`` + ``redis``).

- ``POST /jobs`` (body = text) enqueues a job and returns its id;
- ``GET /jobs/<id>`` returns the result once the worker has processed it (404 before);
- ``GET /status`` returns queue length and processed count; ``GET /healthz`` pings Redis.
"""

from __future__ import annotations

import json
import os
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

R = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"),
                port=int(os.environ.get("REDIS_PORT", "6379")), decode_responses=True)


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        try:
            if self.path == "/healthz":
                R.ping()
                return self._send(200, {"ok": True})
            if self.path in ("/", "/status"):
                return self._send(200, {
                    "queued": R.llen("jobs"),
                    "processed": int(R.get("processed") or 0),
                    "results": R.hlen("results"),
                    "redis_version": R.info("server").get("redis_version"),
                })
            if self.path.startswith("/jobs/"):
                found = R.hget("results", self.path.removeprefix("/jobs/"))
                if found is None:
                    return self._send(404, {"error": "not processed (yet)"})
                return self._send(200, json.loads(found))
            return self._send(404, {"error": "not found"})
        except redis.RedisError as exc:
            return self._send(503, {"error": str(exc)})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/jobs":
            return self._send(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode("utf-8", "replace")
        job_id = uuid.uuid4().hex[:12]
        R.rpush("jobs", json.dumps({"id": job_id, "text": text}))
        return self._send(202, {"id": job_id, "status": f"/jobs/{job_id}"})

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{self.address_string()} {fmt % args}")


if __name__ == "__main__":
    port = int(os.environ.get("PORT", "8000"))
    print(f"status endpoint on :{port}")
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()

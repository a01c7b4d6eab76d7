"""Consume jobs from the Redis list ``jobs``; store each result in the hash ``results``.

A job is a JSON object ``{"id": ..., "text": ...}``; the result counts the words and characters
of the text and records which worker handled it and when.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import redis

QUEUE = "jobs"
RESULTS = "results"


def main() -> None:
    r = redis.Redis(host=os.environ.get("REDIS_HOST", "redis"),
                    port=int(os.environ.get("REDIS_PORT", "6379")), decode_responses=True)
    running = True

    def stop(signum: int, frame: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    me = socket.gethostname()
    r.set("worker:started", time.time())
    print(f"worker {me} waiting for jobs on {QUEUE!r}")
    while running:
        item = r.blpop([QUEUE], timeout=1)
        if item is None:
            continue
        job = json.loads(item[1])
        text = str(job.get("text", ""))
        result = {
            "id": job["id"],
            "words": len(text.split()),
            "chars": len(text),
            "upper": text.upper(),
            "worker": me,
            "done_at": time.time(),
        }
        r.hset(RESULTS, job["id"], json.dumps(result))
        r.incr("processed")
        print(f"processed job {job['id']}: {result['words']} words")
    print("worker stopping")


if __name__ == "__main__":
    main()

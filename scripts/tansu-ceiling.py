#!/usr/bin/env python3
"""The broker's own ceiling, the peer of scripts/bench-latency.sh on the
production shape: starts a tansu of its own (SQLite storage, free port,
temporary directory), produces N 400-byte records with gridwork's producer
settings (idempotent, acks=all, linger.ms=2, one record per produce request:
batch.num.messages=1, ADR 0035) to a 2-partition topic, then consumes them
from the start with librdkafka at the given fetch.wait.max.ms, and prints
both rates.

Usage: scripts/tansu-ceiling.py [N] [FETCH_WAIT_MS] [BATCH_NUM_MESSAGES]
Needs tansu and confluent-kafka (scripts/setup-test-deps.sh installs both).
"""
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    wait = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    bnm = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    work = tempfile.mkdtemp(prefix="tansu-ceiling.")
    port = free_port()
    broker = f"127.0.0.1:{port}"
    env = dict(os.environ, STORAGE_ENGINE="sqlite://tansu.db", RUST_LOG="warn")
    tansu = subprocess.Popen(
        ["tansu", "broker", "--listener-url", f"tcp://{broker}", "--advertised-listener-url", f"tcp://{broker}"],
        cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        topic = "ceiling-" + uuid.uuid4().hex[:8]
        admin = AdminClient({"bootstrap.servers": broker})
        admin.create_topics([NewTopic(topic, 2, 1)])[topic].result()
        p = Producer({"bootstrap.servers": broker, "enable.idempotence": True, "acks": "all",
                      "linger.ms": 2, "batch.num.messages": bnm})
        payload = b"x" * 400
        t = time.time()
        for i in range(n):
            while True:
                try:
                    p.produce(topic, key=str(i % 97).encode(), value=payload)
                    break
                except BufferError:
                    p.poll(0.01)
            p.poll(0)
        p.flush()
        produced = time.time() - t
        c = Consumer({"bootstrap.servers": broker, "group.id": topic, "auto.offset.reset": "earliest",
                      "fetch.wait.max.ms": wait, "enable.auto.commit": False})
        c.subscribe([topic])
        got, t, deadline = 0, None, time.time() + 120
        while got < n and time.time() < deadline:
            m = c.poll(1.0)
            if m is None or m.error():
                continue
            t = t or time.time()
            got += 1
        consumed = time.time() - (t or time.time())
        c.close()
        print(f"tansu: produced {n} in {produced:.1f} s ({n / produced:.0f}/s, batch.num.messages={bnm}); "
              f"consumed {got} in {consumed:.2f} s ({got / max(consumed, 1e-6):.0f}/s) at fetch.wait.max.ms={wait}")
    finally:
        tansu.kill()
        tansu.wait()
        subprocess.run(["rm", "-rf", work], check=False)


if __name__ == "__main__":
    main()

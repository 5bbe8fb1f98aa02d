#!/usr/bin/env python3
"""Each service's CPU share, memory and events per second while a load runs.

Usage: svc-usage.py OUT.json NAME=PID=ADMIN_PORT...

Reads each process's resident memory (VmRSS) and CPU time (/proc/PID/stat)
at once ("at rest", before the load), then every second until SIGTERM or
SIGINT; the events per second are the growth of the consumers'
`consumer_messages_total` on the service's admin `/metrics`. On the signal
it writes OUT.json: per service the RSS at rest and its peak under load (MiB),
the CPU share of one core over the measured span, and events/s.
"""
import json
import os
import re
import signal
import sys
import time
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def events(port):
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    return sum(float(m.group(1)) for m in re.finditer(r"^\S*consumer_messages_total\{[^}]*\} (\S+)$", body, re.M))


def main():
    out = sys.argv[1]
    services = [a.split("=") for a in sys.argv[2:]]
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    start = time.monotonic()
    first = {name: (cpu_seconds(pid), events(port)) for name, pid, port in services}
    rest = {name: rss_mib(pid) for name, pid, _ in services}
    peak = dict(rest)
    while not stop:
        time.sleep(1)
        for name, pid, _ in services:
            try:
                peak[name] = max(peak[name], rss_mib(pid))
            except OSError:
                pass
    span = time.monotonic() - start
    report = {"seconds": round(span, 1), "services": {}}
    for name, pid, port in services:
        cpu0, ev0 = first[name]
        try:
            cpu = cpu_seconds(pid) - cpu0
        except OSError:
            cpu = float("nan")
        ev1 = events(port)
        report["services"][name] = {
            "rss_rest_mib": round(rest[name], 1),
            "rss_peak_mib": round(peak[name], 1),
            "cpu_share": round(cpu / span, 3),
            "events_per_second": round((ev1 - ev0) / span, 1) if ev0 is not None and ev1 is not None else None,
        }
    with open(out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()

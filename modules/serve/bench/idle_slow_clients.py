#!/usr/bin/env python3
"""`semat serve` under idle and slow clients (issue #14), loopback only, bounded loops.

Starts `semat serve --port 0` (GrabCut prior, no model needed), measures /healthz latency and the
server's RSS with no client, then opens IDLE idle connections and SLOW slow-body clients (each
sends a POST header and then one body byte every second), measures again for ROUNDS rounds, and
finally checks that the slow clients were cut off by the body deadline (--body-timeout).

  python3 modules/serve/bench/idle_slow_clients.py --semat build/bin/semat [--idle 500 --slow 20]
"""
import argparse
import http.client
import os
import re
import socket
import subprocess
import sys
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def threads(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def healthz_ms(port, rounds):
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200, r.status
        out.append((time.perf_counter() - t0) * 1e3)
        time.sleep(0.05)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--semat", default="build/bin/semat")
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--slow", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--body-timeout", type=float, default=8)
    a = ap.parse_args()
    env = dict(os.environ, SEMAT_MODELS="/nonexistent")  # GrabCut prior: no model to load
    server = subprocess.Popen([a.semat, "serve", "--port", "0", "--prior", "grabcut",
                               "--body-timeout", str(a.body_timeout)],
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = None
        deadline = time.time() + 60
        while port is None and time.time() < deadline:
            line = server.stderr.readline()
            m = re.search(r"listening on http://[^:]+:(\d+)/", line)
            if m:
                port = int(m.group(1))
        assert port, "the server did not start"
        # Drain the server's log (one line per request) so it never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
        healthz_ms(port, 3)  # warm-up
        base = healthz_ms(port, a.rounds)
        rss0, th0 = rss_mib(server.pid), threads(server.pid)
        t0 = time.perf_counter()
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(a.idle)]
        slow = []
        for _ in range(a.slow):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                      b"Content-Length: 100000\r\n\r\n")
            slow.append(s)
        connect_s = time.perf_counter() - t0
        time.sleep(1.0)  # the server starts a thread per connection: let it absorb the burst
        loaded = []
        for _ in range(a.rounds):
            for s in slow:
                s.sendall(b"x")
            loaded += healthz_ms(port, 1)
            time.sleep(0.3)
        rss1, th1 = rss_mib(server.pid), threads(server.pid)
        # Keep the slow clients sending until the body deadline cuts them off (408).
        answered, t_end = 0, time.time() + a.body_timeout + 6
        for s in slow:
            s.setblocking(False)
        pending = list(slow)
        while pending and time.time() < t_end:
            for s in list(pending):
                try:
                    s.send(b"x")
                    data = s.recv(4096)
                    if data:
                        answered += data.startswith(b"HTTP/1.1 408")
                        pending.remove(s)
                except BlockingIOError:
                    pass
                except OSError:
                    pending.remove(s)
            time.sleep(1)
        for s in idle + slow:
            s.close()
        load = os.getloadavg()
        print(f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
        print(f"no clients: /healthz median {sorted(base)[len(base) // 2]:.1f} ms, worst {max(base):.1f} ms; "
              f"RSS {rss0:.0f} MiB, {th0} threads")
        print(f"{a.idle} idle + {a.slow} slow-body clients (opened in {connect_s:.2f} s): /healthz median "
              f"{sorted(loaded)[len(loaded) // 2]:.1f} ms, worst {max(loaded):.1f} ms of {len(loaded)}; "
              f"RSS {rss1:.0f} MiB, {th1} threads")
        print("  rounds (ms): " + " ".join(f"{v:.0f}" for v in loaded))
        print(f"slow clients answered 408 by the {a.body_timeout:g} s body deadline: {answered} of {a.slow}")
        return 0 if max(loaded) < 1000 and answered == a.slow else 1
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())

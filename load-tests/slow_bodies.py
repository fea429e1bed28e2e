#!/usr/bin/env python3
"""Slow-body flood against a hub (issue 25): N connections from many loopback addresses send a
login request head with Content-Length and then never the body. Prints the hub's RSS and open
descriptors while they hang, /health latency from a fresh address during the flood, and how many
of the slow connections the hub has closed after the body deadline.

    cargo build --release
    python3 load-tests/slow_bodies.py --hub target/release/nashub --conns 3000
"""
import argparse, os, socket, subprocess, tempfile, time, urllib.request

def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))

def health_ms(port, src):
    t = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(src, 0))
    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = s.recv(4096)
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data[:40]
    return (time.monotonic() - t) * 1000

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hub", default="target/release/nashub")
    ap.add_argument("--conns", type=int, default=3000)
    ap.add_argument("--port", type=int, default=18431)
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="slowbodies")
    env = dict(os.environ, NASHUB_BIND=f"127.0.0.1:{args.port}", NASHUB_DATA_DIR=data,
               NASHUB_ADMIN_PASSWORD="admin-password-1", NASHUB_SECOND_FACTOR_EXEMPT="admin", NASHUB_LOG="warn")
    hub = subprocess.Popen([args.hub, "serve"], env=env, stdout=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                health_ms(args.port, "127.0.0.1"); break
            except OSError:
                time.sleep(0.1)
        base_rss, base_fds = rss_kb(hub.pid), fds(hub.pid)
        head = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{")
        socks, refused = [], 0
        t0 = time.monotonic()
        for i in range(args.conns):
            src = f"127.0.{1 + i // 250}.{1 + i % 250}"
            try:
                s = socket.create_connection(("127.0.0.1", args.port), timeout=5, source_address=(src, 0))
                s.sendall(head)
                socks.append(s)
            except OSError:
                refused += 1
        opened = time.monotonic() - t0
        time.sleep(1)
        print(f"slow connections: {len(socks)} open, {refused} refused at connect, in {opened:.1f} s")
        print(f"hub RSS {base_rss/1024:.1f} MB before, {rss_kb(hub.pid)/1024:.1f} MB with them "
              f"({(rss_kb(hub.pid)-base_rss)*1024/max(1,len(socks)):.0f} B each); fds {base_fds} -> {fds(hub.pid)}")
        lat = sorted(health_ms(args.port, "127.0.200.1") for _ in range(20))
        print(f"/health during the flood from a fresh address: p50 {lat[10]:.1f} ms, max {lat[-1]:.1f} ms")
        deadline = time.monotonic() + 30
        closed = 0
        while time.monotonic() < deadline:
            closed = 0
            for s in socks:
                s.setblocking(False)
                try:
                    if s.recv(4096) == b"": closed += 1
                    else: closed += 1  # an answer (408) counts: the hub gave up on the body
                except BlockingIOError:
                    pass
                except OSError:
                    closed += 1
            if closed == len(socks): break
            time.sleep(0.5)
        print(f"after the body deadline ({time.monotonic()-t0:.1f} s since the first): {closed}/{len(socks)} "
              f"answered or closed by the hub; hub fds {fds(hub.pid)}, RSS {rss_kb(hub.pid)/1024:.1f} MB")
        for s in socks: s.close()
    finally:
        hub.terminate(); hub.wait()

if __name__ == "__main__":
    main()

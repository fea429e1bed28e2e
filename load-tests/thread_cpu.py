#!/usr/bin/env python3
"""CPU per hub thread, for `load-realtime run table` windows (issue 22).

    python3 load-tests/thread_cpu.py sample > /tmp/threads.log &
    target/release/load-realtime run table --users 500 --secs 8 --rates 250,500 --idle-secs 2
    python3 load-tests/thread_cpu.py summarize /tmp/threads.log 4.5:10.5:250 13.5:19.5:500

`sample` waits for the first `nashub serve` process, then prints once a second the seconds
since it started and each thread group's cumulative CPU ticks (utime + stime from
/proc/<pid>/task/*/stat; numbered threads such as the HTTP workers summed by name) until the
process ends. `summarize` prints, per window FROM:TO:RATE (seconds since the hub started,
deposits per second), each thread group's CPU in microseconds per deposit. With the table's
defaults the 250/s window runs from ~3 s to ~11 s and the 500/s window from ~11 s to ~19 s;
take a window inside each.
"""
import os
import re
import sys
import time

TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def find_hub():
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"nashub") and b"serve" in argv:
            return pid
    return None


def sample():
    pid = None
    while pid is None:
        pid = find_hub()
        time.sleep(0.2)
    started = time.time()
    while os.path.exists(f"/proc/{pid}"):
        groups = {}
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                stat = open(f"/proc/{pid}/task/{tid}/stat").read()
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                ticks = int(fields[11]) + int(fields[12])
                name = re.sub(r"\d+$", "#", name).replace(" ", "_")
                groups[name] = groups.get(name, 0) + ticks
        except OSError:
            break
        line = " ".join(f"{k}={v}" for k, v in sorted(groups.items()))
        print(f"{time.time() - started:.1f} {line}", flush=True)
        time.sleep(1)


def summarize(path, windows):
    rows = []
    for line in open(path):
        parts = line.split()
        groups = dict(p.split("=") for p in parts[1:])
        rows.append((float(parts[0]), {k: int(v) for k, v in groups.items()}))

    def at(t):
        return min(rows, key=lambda r: abs(r[0] - t))

    for window in windows:
        start, end, rate = (float(x) for x in window.split(":"))
        (t0, a), (t1, b) = at(start), at(end)
        deposits = (t1 - t0) * rate
        per = {k: (v - a.get(k, 0)) * TICK_US / deposits for k, v in b.items()}
        shown = " ".join(f"{k} {v:.0f}" for k, v in sorted(per.items()) if v >= 5)
        print(f"{rate:.0f}/s: total {sum(per.values()):.0f} µs per deposit: {shown}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["sample"]:
        sample()
    elif sys.argv[1:2] == ["summarize"] and len(sys.argv) > 3:
        summarize(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)

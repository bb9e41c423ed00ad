#!/usr/bin/env python3
"""Mixes held in real time by one node and by two nodes on one PostgreSQL (issue 16).

Each node is pinned to a core of its own with `taskset` (one node: CPU 0; two nodes:
CPU 0 and CPU 1), so "two nodes" means twice the CPU and the ratio says how close to
linear the cluster scales. The job is the capacity benchmark's (bench/mix.py CAP):
N x (4 x 320x240 -> 640x360@30, 800 kb/s), the same 4 clips published to every node,
admission lifted (`--mix-budget`). Every StartMix is sent to node A; placement spreads
the tasks by free budget (each node holds the inputs, so inputs do not decide).

A probe holds when every task on every node ran at >= 29.5 fps in a 10 s window with no
skipped tick and no encoder-queue drop. Each side's limit is bisected between NODES_LO
and NODES_HI (default "3 10" for one node; doubled for two).

Usage: bench/nodes.py BIN   (env: NODES_SEARCH="3 10")
Each node's 4 ffmpeg publishers are pinned to its core too, so one node and two nodes
carry the same load per core; PostgreSQL (a lease renewal per node a second) is not
pinned.
"""
import atexit
import os
import shutil
import subprocess
import sys
import time

import mix
from benchproc import free_port, spawn, stop
from failover import pg_tool

BIN = sys.argv[1]
LO, HI = (int(x) for x in os.environ.get("NODES_SEARCH", "3 10").split())
WINDOW = 10


def start_node(name, store, cpu):
    rt, ht = free_port(), free_port()
    out = os.path.join(mix.TMP, f"{name}{rt}.out")
    p = spawn(["taskset", "-c", str(cpu), BIN, "serve", "--open-publish", "--rtc-udp",
               "127.0.0.1:0", "--rtmp", f"127.0.0.1:{rt}", "--http", f"127.0.0.1:{ht}",
               "--data", os.path.join(mix.TMP, f"{name}{rt}"), "--app",
               f"{mix.APP}:{mix.SECRET}", "--no-rate-limits", "--store", store,
               "--mix-budget", "100000000000"],
              stdout=open(out, "w"), stderr=open(out + ".log", "w"),
              env={**os.environ, "RUST_LOG": os.environ.get("NODES_LOG", "warn"),
                   "TRIBUTARY_ADMIN_TOKEN": mix.ADMIN_TOKEN})
    mix.wait_for(lambda: "API listening" in open(out).read(), name)
    return p, f"rtmp://127.0.0.1:{rt}/{mix.APP}", f"http://127.0.0.1:{ht}"


def probe(pg_port, clips, nodes, n, run):
    db = f"nodes{run}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(pg_port), "-U", "tributary", db],
                   check=True)
    store = f"postgres://tributary@127.0.0.1:{pg_port}/{db}"
    started = [start_node(f"n{i}", store, i) for i in range(nodes)]
    # Each node's publishers on its own core: both sides carry the same load per core.
    pubs = [spawn(["taskset", "-c", str(cpu), "ffmpeg", "-v", "error", "-re", "-i", c, "-c", "copy",
                   "-f", "flv", f"{rtmp}/c{i}"])
            for cpu, (_, rtmp, _) in enumerate(started) for i, c in enumerate(clips)]
    for _, _, http in started:
        mix.wait_for(lambda: all(mix.get_json(f"{http}/api/streams/{mix.APP}/c{i}")["video_codec"]
                                 for i in range(4)), "inputs")
    # Every node sees the others' leases (and budgets) before the first call.
    a = started[0][2]
    mix.wait_for(lambda: len(mix.get_json(f"{a}/api/nodes")["nodes"]) == nodes, "nodes")
    for k in range(n):
        mix.zego(a, "StartMix", {
            "TaskId": f"cap{k}", "UserId": f"bench{k}",
            "MixInput": mix.quad_inputs([f"c{i}" for i in range(4)], 640, 360),
            "MixOutput": [{"StreamId": f"cap{k}", "Width": 640, "Height": 360, "Fps": 30,
                           "VideoBitrate": 800000, "AudioCodec": 1}]})
    time.sleep(5)
    s0 = [mix.get_json(f"{h}/api/mix") for _, _, h in started]
    c0 = [mix.cpu_s(p.pid) for p, _, _ in started]
    time.sleep(WINDOW)
    s1 = [mix.get_json(f"{h}/api/mix") for _, _, h in started]
    c1 = [mix.cpu_s(p.pid) for p, _, _ in started]
    ok, parts = True, []
    for i, (before, after) in enumerate(zip(s0, s1)):
        by = {s["task_id"]: s for s in before}
        worst, skipped, dropped = 99.0, 0, 0
        for s in after:
            b = by.get(s["task_id"])
            if b is None:
                continue
            worst = min(worst, (s["ticks"] - b["ticks"]) / WINDOW)
            skipped += s["skipped_ticks"] - b["skipped_ticks"]
            dropped += s["outputs"][0]["dropped_ticks"] - b["outputs"][0]["dropped_ticks"]
        node_ok = len(after) == 0 or (worst >= 29.5 and skipped == 0 and dropped == 0)
        ok = ok and node_ok
        parts.append(f"node {i} (CPU {i}): {len(after)} tasks, {(c1[i] - c0[i]) / WINDOW:.2f} cores, "
                     f"worst {worst if after else 0:.1f} fps, skipped {skipped}, drops {dropped}")
    total = sum(len(s) for s in s1)
    print(f"{nodes} node(s), N={n} ({total} running): " + "; ".join(parts)
          + f" -> {'REAL TIME' if ok and total == n else 'FALLS BEHIND'}", flush=True)
    for p in pubs:
        stop(p)
    for p, _, _ in started:
        stop(p)
    return ok and total == n


def main():
    atexit.register(mix.cleanup)
    pg = os.path.join(mix.TMP, "pg")
    if os.geteuid() == 0:
        shutil.chown(mix.TMP, "postgres")
    pg_port = free_port()
    pg_tool("initdb", "-D", pg, "-U", "tributary", "--auth=trust", "-E", "UTF8")
    pg_tool("pg_ctl", "-D", pg, "-l", os.path.join(mix.TMP, "pg.log"), "-w",
            "-o", f"-p {pg_port} -k {mix.TMP} -c listen_addresses=127.0.0.1", "start")
    atexit.register(lambda: pg_tool("pg_ctl", "-D", pg, "-m", "immediate", "-w", "stop"))
    clips = []
    for i in range(4):
        path = os.path.join(mix.TMP, f"c{i}.flv")
        mix.clip(path, "320x240", 300 + 100 * i)
        clips.append(path)
    runs = iter(range(1000))
    limits = {}
    for nodes in (1, 2):
        lo, hi = LO * nodes, HI * nodes
        if not probe(pg_port, clips, nodes, lo, next(runs)):
            print(f"{nodes} node(s): below {lo}")
            limits[nodes] = None
            continue
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if probe(pg_port, clips, nodes, mid, next(runs)):
                lo = mid
            else:
                hi = mid
        limits[nodes] = lo
        print(f"{nodes} node(s) limit: {lo} mixes in real time", flush=True)
    if limits.get(1) and limits.get(2):
        print(f"two nodes / (2 x one node) = {limits[2] / (2 * limits[1]):.2f} (goal >= 0.90)")


if __name__ == "__main__":
    main()

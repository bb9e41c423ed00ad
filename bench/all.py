"""Runs every side-by-side benchmark and prints one table: metric, tributary, peer,
ratio, goal, met / not met.

Each part is its own script, and every script still runs alone and prints its own lines
(other tools read them). This script runs them, keeps their full output in
$OUT_DIR (printed at the end), and reads their lines.

Parts, chosen with PARTS (default: all of them):
  fanout  bench/fanout.sh — RTMP/HTTP-FLV players per core beside nginx-rtmp, WHEP
          viewers beside RTMP players
  mix     bench/mix.sh j1 cap audio silent — J1 CPU beside nginx-rtmp + ffmpeg, the
          mixer-added latency, mixes held in real time beside ffmpeg processes, and
          audio-only rooms per core (speaking, and muted in the full run) with the
          cost of FFmpeg's codecs alone
  api     bench/api.sh — signed API requests per second (no peer)

QUICK=1 shrinks every part (fewer players, shorter runs) to about 4 minutes on 2 cores
for a first look. Numbers from a quick run are noisier (the J1 floor most: its ffmpeg
runs start up on a few seconds of media), so BENCHMARKS.md quotes full runs.
"""
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("QUICK", "") not in ("", "0")
PARTS = os.environ.get("PARTS", "fanout mix api").split()
OUT_DIR = os.environ.get("OUT_DIR") or tempfile.mkdtemp(prefix="tributary-bench-")

rows = []


def row(metric, ours, peer, ratio, goal, met):
    rows.append((metric, ours, peer, ratio, goal, met))


def run(name, cmd, env):
    """Runs one part; its output is kept in OUT_DIR and returned."""
    path = os.path.join(OUT_DIR, f"{name}.log")
    print(f"== {name}: {' '.join(cmd)} ({' '.join(f'{k}={v}' for k, v in env.items())})", flush=True)
    with open(path, "w") as log:
        r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        log.write(r.stdout)
    if r.returncode != 0:
        print(f"   {name} failed (exit {r.returncode}); see {path}", flush=True)
    return r.stdout


def fields(line):
    return dict(re.findall(r"(\w+)=([\w.]+)", line))


def fanout():
    env = ({"N_LIST": "500", "WHEP_LIST": "20", "SECS": "4"} if QUICK
           else {"N_LIST": "500 2000", "WHEP_LIST": "20 100", "SECS": "8"})
    out = run("fanout", ["bench/fanout.sh"], env)
    ours = {}
    for line in out.splitlines():
        for who in ("tributary rtmp", "nginx-rtmp rtmp", "tributary http-flv"):
            if line.startswith(who + ": mode="):
                f = fields(line)
                ours[(who, f["players"])] = f
    for n in env["N_LIST"].split():
        t, ng, flv = (ours.get((w, n)) for w in ("tributary rtmp", "nginx-rtmp rtmp", "tributary http-flv"))
        if not (t and ng):
            row(f"RTMP players/core, {n} players", "n/a", "n/a", "-", ">= 1.5x", "not measured")
            continue
        tp, npc = float(t["players_per_core"]), float(ng["players_per_core"])
        full = float(t["recv_mbps_per_player"]) >= 0.95
        ratio = tp / npc if npc else float("inf")
        row(f"RTMP players/core, {n} players (1 Mb/s)", f"{tp:.0f}", f"{npc:.0f} nginx-rtmp", f"{ratio:.2f}",
            ">= 1.5x, full rate", "met" if ratio >= 1.5 and full else "NOT MET")
        if flv:
            fp = float(flv["players_per_core"])
            full = float(flv["recv_mbps_per_player"]) >= 0.95
            r2 = fp / npc if npc else float("inf")
            row(f"HTTP-FLV players/core, {n} players", f"{fp:.0f}", f"{npc:.0f} nginx-rtmp (RTMP)", f"{r2:.2f}",
                ">= 1.5x, full rate", "met" if r2 >= 1.5 and full else "NOT MET")
        n_i = int(n)
        row(f"RSS per player, {n} players", f"{float(t['rss_mib']) * 1024 / n_i:.0f} KiB",
            f"{float(ng['rss_mib']) * 1024 / n_i:.0f} KiB nginx-rtmp", "-", "reported", "reported")
    whep = re.findall(r"tributary whep: (\d+) WHEP viewers: .*?([\d.]+) ms CPU per viewer-second", out)
    same = re.findall(r"tributary rtmp \(same n\): (mode=.*)", out)
    for (n, ms), line in zip(whep, same):
        f = fields(line)
        rtmp_ms = float(f["cpu_pct_per_player"]) * 10  # % of a core → ms per second
        ratio = float(ms) / rtmp_ms if rtmp_ms else float("inf")
        row(f"WHEP cost per viewer, {n} viewers", f"{float(ms):.2f} ms/s", f"{rtmp_ms:.2f} ms/s RTMP",
            f"{ratio:.2f}", "<= 1.5x RTMP", "met" if ratio <= 1.5 else "NOT MET")


def mix():
    # Muted rooms ("silent") only in the full run: QUICK has to fit in 5 minutes.
    env = ({"SECS": "6", "CAP_LIST": "8", "ROOMS_LIST": "50", "PARTS": "j1 cap audio"} if QUICK
           else {"SECS": "20", "CAP_SEARCH": "8 24", "ROOMS_LIST": "50 100 200", "PARTS": "j1 cap audio silent"})
    out = run("mix", ["bench/mix.sh"], env)
    cpu = dict(re.findall(r"^(tributary|ffmpeg)\s+cpu ([\d.]+) core-s/media-s", out, re.M))
    lat = dict((w, (a, b)) for w, a, b in
               re.findall(r"^(tributary|ffmpeg)\s+cpu .*added latency p50 (\d+) ms p95 (\d+) ms", out, re.M))
    m = re.search(r"ratio tributary/ffmpeg CPU: ([\d.]+)", out)
    if m and "tributary" in cpu:
        r = float(m.group(1))
        row("J1 CPU (4x640x480 -> 720p30)", f"{cpu['tributary']} core-s/s",
            f"{cpu.get('ffmpeg', '?')} core-s/s nginx-rtmp + ffmpeg", f"{r:.2f}", "<= 0.85x",
            "met" if r <= 0.85 else "NOT MET")
    else:
        row("J1 CPU (4x640x480 -> 720p30)", "n/a", "n/a", "-", "<= 0.85x", "not measured")
    fl = re.search(r"floor: decode the 4 inputs ([\d.]+) \+ encode the output ([\d.]+) = ([\d.]+) "
                   r"core-s/media-s; tributary / floor ([\d.]+)", out)
    if fl:
        r = float(fl.group(4))
        row("J1 CPU vs its floor (decode + encode alone)", f"{cpu.get('tributary', '?')} core-s/s",
            f"{fl.group(3)} core-s/s floor ({fl.group(1)} dec + {fl.group(2)} enc)", f"{r:.2f}", "<= 1.10x",
            # A quick run's floor is a few seconds of media: ffmpeg's start-up weighs on it.
            "indicative (quick)" if QUICK else "met" if r <= 1.10 else "NOT MET")
    else:
        row("J1 CPU vs its floor (decode + encode alone)", "n/a", "n/a", "-", "<= 1.10x", "not measured")
    if "tributary" in lat:
        p50, p95 = (int(x) for x in lat["tributary"])
        peer = lat.get("ffmpeg")
        row("mixer-added latency p50 / p95", f"{p50} / {p95} ms",
            f"{peer[0]} / {peer[1]} ms ffmpeg" if peer else "n/a", "-", "<= 100 / 200 ms",
            "met" if p50 <= 100 and p95 <= 200 else "NOT MET")

    def held(who):
        ok = [int(n) for n, verdict in
              re.findall(rf"^{who}\s+N=(\d+):.*-> (REAL TIME|FALLS BEHIND)", out, re.M) if verdict == "REAL TIME"]
        return max(ok) if ok else 0
    t, f = held("tributary"), held("ffmpeg")
    if "CAP_SEARCH" in env:
        # Each side's limit, bisected: the largest N that held real time.
        tried = "limit searched in " + "-".join(env["CAP_SEARCH"].split())
    else:
        tried = "tried " + env["CAP_LIST"]
    ratio = t / f if f else float("inf") if t else 0.0
    row(f"4x320x240 -> 640x360 mixes in real time ({tried})", f"{t}", f"{f} ffmpeg processes",
        f"{ratio:.2f}", ">= 1.5x",
        # A fixed list finds no limit when both sides hold its largest N.
        ("met" if f and ratio >= 1.5 else "NOT MET") if "CAP_SEARCH" in env else "limit not searched (quick)")
    for kind in ("", "silent "):
        rooms = re.findall(rf"tributary (\d+) {kind}rooms: ([\d.]+) cores -> (\d+) rooms/core; worst task ([\d.]+)", out)
        best = 0
        for n, _cores, per_core, worst in rooms:
            if float(worst) >= 49.5:
                best = max(best, int(per_core))
        peer = 0
        for n, per_core, verdict in re.findall(
                rf"ffmpeg\s+(\d+) {kind}rooms: [\d.]+ cores -> (\d+) rooms/core; (REAL TIME|FALLS BEHIND)", out):
            if verdict == "REAL TIME":
                peer = max(peer, int(per_core))
        if kind and not rooms:
            continue  # the muted rooms were not run (QUICK)
        ratio = best / peer if peer else float("inf")
        what = "muted speakers (digital silence)" if kind else "4 speakers"
        row(f"audio-only rooms of {what} per core", f"{best}", f"{peer} ffmpeg amix processes" if peer else "n/a",
            f"{ratio:.2f}" if peer else "-", ">= 150/core, >= 2x peer" if not kind else "reported",
            ("met" if best >= 150 and peer and ratio >= 2 else "NOT MET") if not kind else "reported")
        fl = re.search(rf"floor {kind}rooms: decode the 4 speakers ([\d.]+) \+ encode the mix ([\d.]+) = [\d.]+ "
                       rf"core-s per room-s -> (\d+) rooms/core; tributary / floor ([\d.]+)", out)
        if fl:
            # FFmpeg's codecs, as the peer uses them; the mixer encodes AAC with libfdk-aac,
            # which costs less, so it can run below this "floor".
            row(f"audio rooms of {what} vs FFmpeg's codecs alone (decode + encode)", f"{best} rooms/core",
                f"{fl.group(3)} rooms/core FFmpeg floor", fl.group(4), "reported", "reported")


def api():
    out = run("api", ["bench/api.sh"], {"SECS": "3" if QUICK else "8", "CONC": "16",
                                         "STORES": "sqlite postgres"})
    for line in out.splitlines():
        if line.startswith("mode=") or line.startswith("store=postgres mode="):
            f = fields(line)
            store = "PostgreSQL" if f.get("store") == "postgres" else "SQLite"
            what = "reads (DescribeSimpleStreamList)" if f["mode"] == "read" else "durable writes (AddStream/DeleteStream)"
            row(f"signed API {what}, 16 connections, {store}", f"{f['req_per_s']} req/s, p99 {f['p99_ms']} ms",
                "no peer", "-", "reported", "reported")


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for part, fn in (("fanout", fanout), ("mix", mix), ("api", api)):
        if part in PARTS:
            fn()
    head = ("metric", "tributary", "peer", "ratio", "goal", "met")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    print()
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print(f"\nfull output of every part: {OUT_DIR}")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Soak: tributary under churn for MINUTES (default 30), then kill -9 under load.

What runs the whole time, all against one server on loopback:
- 4 steady publishers (pre-encoded 320x240@15 clips, looped, copied: no encoding cost)
  and churn publishers coming and going (a new one every 8 s, each for 10-30 s);
- PLAYERS (default 200) players joining and leaving: HTTP-FLV readers (each stays
  10-90 s, then reconnects), HLS pollers, and 10 RTMP players (ffmpeg, copy to null);
- one permanent mix, and mixes started / updated / stopped every 4 s;
- signed ZEGO API load (list, add/delete, forbid/resume, user counts), ~20 requests/s;
- a callback receiver that accepts and never answers (every callback hangs to its timeout);
- garbage on every port every 5 s (random bytes to RTMP and HTTP, truncated handshakes,
  a slowloris head).
Sampled every 30 s: RSS, open FDs, threads, CPU. At the end: every steady player still
receives media; then the server is SIGKILLed under load and restarted, and the running
tasks, the ban list and the pending callbacks must come back.

Usage: bench/soak.py TRIBUTARY_BINARY   (env: MINUTES, PLAYERS)
Prints a Markdown report. Standard library only; everything it starts is stopped.
"""

import asyncio
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchproc import PROCS, free_port, spawn, stop

BIN = sys.argv[1]
MINUTES = float(os.environ.get("MINUTES", "30"))
PLAYERS = int(os.environ.get("PLAYERS", "200"))
APP, SECRET, ADMIN = 1, "soaksecret0123456789abcdef", "soak-admin-token"
TMP = tempfile.mkdtemp(prefix="tributary-soak-")
CLK = os.sysconf("SC_CLK_TCK")
STOP = threading.Event()
# Set before the kill: the state-changing load (mix churn, moderation) pauses so the state
# before and after can be compared; players, publishers and garbage go on.
FREEZE = threading.Event()
LOCK = threading.Lock()
ERRORS = {}
STATS = {
    "api_ok": 0, "api_refused": 0, "api_errors": 0,
    "mix_ok": 0, "mix_refused": 0, "mix_errors": 0,
    "flv_connects": 0, "flv_errors": 0, "flv_bytes": 0,
    "hls_segments": 0, "hls_errors": 0,
    "garbage_sent": 0, "callbacks_held": 0,
    "publishers_started": 0,
}


def bump(key, n=1):
    with LOCK:
        STATS[key] += n


def note(kind, what):
    """Counts a failure by kind and message (the report lists them)."""
    with LOCK:
        k = f"{kind}: {what}"[:160]
        ERRORS[k] = ERRORS.get(k, 0) + 1


def proc_sample(pid):
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                rss = int(line.split()[1]) // 1024
            elif line.startswith("Threads"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK
    return rss, fds, threads, cpu


# ---------------------------------------------------------------- the server

RT, HT, HUNG = free_port(), free_port(), free_port()
HTTP = f"http://127.0.0.1:{HT}"
RTMP = f"rtmp://127.0.0.1:{RT}/{APP}"
DATA = os.path.join(TMP, "data")
CONFIG = os.path.join(TMP, "soak.toml")
with open(CONFIG, "w") as f:
    f.write(f"""
[callbacks]
retry_base_ms = 2000
timeout_ms = 5000

[admin]
token = "{ADMIN}"

[[apps]]
app_id = {APP}
server_secret = "{SECRET}"
callback_secret = "soak-callback"
callback_urls = ["http://127.0.0.1:{HUNG}/hook"]
[apps.rate_limits]
enabled = false
""")
ARGS = [BIN, "serve", "--open-publish", "--rtc-udp", "127.0.0.1:0", "--rtmp", f"127.0.0.1:{RT}", "--http", f"127.0.0.1:{HT}",
        "--data", DATA, "--config", CONFIG]


def start_server():
    out = open(os.path.join(TMP, "server.out"), "a")
    err = open(os.path.join(TMP, "server.err"), "a")
    p = spawn(ARGS, stdout=out, stderr=err, env={**os.environ, "RUST_LOG": "warn"})
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{HTTP}/healthz", timeout=1).read()
            return p
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not come up")


def cli(*args):
    return subprocess.run([BIN, *args, "--data", DATA, "--config", CONFIG],
                          capture_output=True, text=True, check=True).stdout


def admin_json(path):
    req = urllib.request.Request(f"{HTTP}{path}", headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)


def zego(action, params=None, body=None):
    ts, nonce = str(int(time.time())), "%016x" % random.getrandbits(64)
    sig = hashlib.md5(f"{APP}{nonce}{SECRET}{ts}".encode()).hexdigest()
    q = "".join(f"&{k}={v}" for k, v in (params or {}).items())
    url = (f"{HTTP}/?Action={action}{q}&AppId={APP}&SignatureNonce={nonce}&Timestamp={ts}"
           f"&Signature={sig}&SignatureVersion=2.0")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.load(r)


# ---------------------------------------------------------------- load

def make_clip(path, freq):
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
                    "-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=44100", "-t", "20",
                    "-c:v", "libx264", "-preset", "veryfast", "-b:v", "300k", "-g", "30",
                    "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "48k", "-f", "flv", path], check=True)


def publisher(clip, stream, user):
    bump("publishers_started")
    return spawn(["ffmpeg", "-v", "error", "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy",
                  "-f", "flv", f"{RTMP}/{stream}?room=soak&user={user}"])


def churn_publishers(clip):
    k = 0
    live = []
    while not STOP.is_set():
        still = []
        for p, end in live:
            if time.time() > end:
                stop(p)
            else:
                still.append((p, end))
        live = still
        if len(live) < 3:
            live.append((publisher(clip, f"churn{k % 10}", f"c{k}"), time.time() + random.uniform(10, 30)))
            k += 1
        STOP.wait(8)
    for p, _ in live:
        stop(p)


def mix_body(task, seq, inputs, output, swap=False):
    rects = [{"Top": 0, "Left": 0, "Bottom": 240, "Right": 160},
             {"Top": 0, "Left": 160, "Bottom": 240, "Right": 320}]
    if swap:
        rects.reverse()
    return {"TaskId": task, "UserId": "soak", "Sequence": seq,
            "MixInput": [{"StreamId": s, "RectInfo": r} for s, r in zip(inputs, rects)],
            "MixOutput": [{"StreamId": output, "Width": 320, "Height": 240, "Fps": 15,
                           "VideoBitrate": 300000}]}


def mix_call(action, body):
    try:
        r = zego(action, body=body)
        if r.get("Code") == 0:
            bump("mix_ok")
        else:
            bump("mix_refused")
            note(f"{action} refused", f"{r.get('Code')} {r.get('Message')}")
        return r
    except OSError as e:
        bump("mix_errors")
        note(f"{action} error", e)
        return None


def churn_mixes():
    seq = int(time.time() * 1000)
    running = {}
    k = 0
    while not STOP.is_set():
        if FREEZE.is_set():
            STOP.wait(1)
            continue
        seq += 1
        choice = random.random()
        if not running or (choice < 0.4 and len(running) < 2):
            task = f"c{k}"
            k += 1
            ins = random.sample([f"s{i}" for i in range(4)], 2)
            r = mix_call("StartMix", mix_body(task, seq, ins, f"cmix{task}"))
            if r and r.get("Code") == 0:
                running[task] = ins
        elif choice < 0.75:
            task = random.choice(list(running))
            mix_call("StartMix", mix_body(task, seq, running[task], f"cmix{task}", swap=random.random() < 0.5))
        else:
            task = random.choice(list(running))
            mix_call("StopMix", {"TaskId": task, "UserId": "soak", "Sequence": seq})
            running.pop(task)
        STOP.wait(4)
    for task in list(running):
        seq += 1
        mix_call("StopMix", {"TaskId": task, "UserId": "soak", "Sequence": seq})


def api_load():
    k = 0
    while not STOP.is_set():
        if FREEZE.is_set():
            STOP.wait(1)
            continue
        k += 1
        calls = [
            ("DescribeSimpleStreamList", {"RoomId": "soak"}),
            ("DescribeUserNum", {"RoomId[]": "soak"}),
            ("AddStream", {"RoomId": "api", "UserId": "api", "StreamId": f"api{k % 50}"}),
            ("DeleteStream", {"RoomId": "api", "UserId": "api", "StreamId": f"api{(k - 1) % 50}"}),
            ("ForbidRTCStream", {"StreamId": f"banned{k % 20}", "Sequence": str(int(time.time() * 1000))}),
            ("ResumeRTCStream", {"StreamId": f"banned{(k - 3) % 20}", "Sequence": str(int(time.time() * 1000) + 1)}),
        ]
        for action, params in calls:
            try:
                r = zego(action, params)
                if r.get("Code") == 0:
                    bump("api_ok")
                else:
                    bump("api_refused")
                    note(f"{action} refused", f"{r.get('Code')} {r.get('Message')}")
            except OSError as e:
                bump("api_errors")
                note(f"{action} error", e)
        STOP.wait(0.3)


def hung_receiver():
    """Accepts callbacks and never answers; holds each connection for 60 s."""
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", HUNG))
    l.listen(128)
    l.settimeout(1)
    held = []
    while not STOP.is_set():
        try:
            c, _ = l.accept()
            held.append((c, time.time()))
            bump("callbacks_held")
        except socket.timeout:
            pass
        now = time.time()
        for c, t in [h for h in held if now - h[1] > 60]:
            c.close()
        held = [h for h in held if now - h[1] <= 60]
    for c, _ in held:
        c.close()


def garbage():
    slow = []
    while not STOP.is_set():
        for port, payload in [(RT, os.urandom(4096)), (HT, os.urandom(2048)),
                              (RT, b"\x03" + os.urandom(700)),
                              (HT, b"POST /?Action=StartMix HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{{{{")]:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.sendall(payload)
                s.close()
                bump("garbage_sent")
            except OSError:
                pass
        try:
            s = socket.create_connection(("127.0.0.1", HT), timeout=2)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append((s, time.time()))
        except OSError:
            pass
        now = time.time()
        for s, t in [x for x in slow if now - x[1] > 20]:
            s.close()
        slow = [x for x in slow if now - x[1] <= 20]
        STOP.wait(5)
    for s, _ in slow:
        s.close()


# Players: asyncio HTTP-FLV readers and HLS pollers; `last` is when each last got media.
PLAYER_LAST = {}


async def flv_player(i, target, steady):
    while not STOP.is_set():
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", HT), 5)
            w.write(f"GET /{APP}/{target}.flv HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await w.drain()
            bump("flv_connects")
            end = time.time() + (10 ** 9 if steady else random.uniform(10, 90))
            while time.time() < end and not STOP.is_set():
                data = await asyncio.wait_for(r.read(65536), 15)
                if not data:
                    break
                bump("flv_bytes", len(data))
                PLAYER_LAST[i] = time.time()
            w.close()
        except (OSError, asyncio.TimeoutError) as e:
            bump("flv_errors")
            note("HTTP-FLV player", repr(e))
            await asyncio.sleep(1)


async def hls_player(i, target):
    seen = set()
    loop = asyncio.get_running_loop()
    while not STOP.is_set():
        try:
            text = await loop.run_in_executor(None, lambda: urllib.request.urlopen(
                f"{HTTP}/{APP}/{target}/playlist.m3u8", timeout=5).read().decode())
            for line in text.splitlines():
                if line and not line.startswith("#") and line not in seen:
                    seen.add(line)
                    url = f"{HTTP}/{APP}/{target}/{line}"
                    await loop.run_in_executor(None, lambda: urllib.request.urlopen(url, timeout=5).read())
                    bump("hls_segments")
                    PLAYER_LAST[i] = time.time()
        except OSError as e:
            bump("hls_errors")
            note("HLS player", e)
        await asyncio.sleep(2)


def players(n):
    async def main():
        tasks = []
        for i in range(n):
            target = ["s0", "s1", "s2", "s3", "mixA"][i % 5]
            if i % 10 == 9:
                tasks.append(hls_player(i, target))
            else:
                # A quarter stay connected all along; the rest join and leave.
                tasks.append(flv_player(i, target, steady=(i % 4 == 0)))
        await asyncio.gather(*tasks)
    asyncio.run(main())


# ---------------------------------------------------------------- the run

def main():
    clip_a, clip_b = os.path.join(TMP, "a.flv"), os.path.join(TMP, "b.flv")
    make_clip(clip_a, 440)
    make_clip(clip_b, 660)
    server = start_server()
    steady = [publisher(clip_a if i % 2 else clip_b, f"s{i}", f"u{i}") for i in range(4)]
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if all(admin_json(f"/api/streams/{APP}/s{i}").get("video_codec") for i in range(4)):
                break
        except OSError:
            pass
        time.sleep(0.5)
    seq = int(time.time() * 1000)
    r = mix_call("StartMix", mix_body("perm", seq, ["s0", "s1"], "mixA"))
    assert r and r["Code"] == 0, r
    rtmp_players = [spawn(["ffmpeg", "-v", "error", "-i", f"{RTMP}/s{i % 4}", "-c", "copy", "-f", "null", "-"])
                    for i in range(10)]
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in [
        (hung_receiver, ()), (churn_publishers, (clip_a,)), (churn_mixes, ()), (api_load, ()),
        (garbage, ()), (players, (PLAYERS - 10,))]]
    for t in threads:
        t.start()

    samples = []
    start = time.time()
    cpu0 = proc_sample(server.pid)[3]
    while time.time() - start < MINUTES * 60:
        rss, fds, thr, cpu = proc_sample(server.pid)
        samples.append((time.time() - start, rss, fds, thr, cpu - cpu0))
        if os.environ.get("TRACE"):
            try:
                tasks = len(admin_json("/api/mix"))
            except OSError:
                tasks = -1
            print(f"trace t={samples[-1][0]:.0f}s rss={rss} fds={fds} threads={thr} tasks={tasks}",
                  file=sys.stderr, flush=True)
        time.sleep(30)
    rss, fds, thr, cpu = proc_sample(server.pid)
    samples.append((time.time() - start, rss, fds, thr, cpu - cpu0))

    # Optional diagnosis: how much of the RSS is memory the allocator holds but nothing
    # uses (fragmentation), as opposed to memory in use (a leak would stay).
    trim = None
    if os.environ.get("TRIM_AT_END"):
        before = proc_sample(server.pid)[0]
        subprocess.run(["gdb", "-p", str(server.pid), "-batch", "-ex", "call (int)malloc_trim(0)"],
                       capture_output=True)
        trim = (before, proc_sample(server.pid)[0])

    # Every steady player still plays: media in the last 20 s.
    now = time.time()
    steady_ids = [i for i in range(PLAYERS - 10) if i % 10 != 9 and i % 4 == 0]
    hls_ids = [i for i in range(PLAYERS - 10) if i % 10 == 9]
    flowing = [i for i in steady_ids if now - PLAYER_LAST.get(i, 0) < 20]
    hls_flowing = [i for i in hls_ids if now - PLAYER_LAST.get(i, 0) < 20]
    churners = [i for i in range(PLAYERS - 10) if i % 10 != 9 and i % 4 != 0]
    churn_flowing = [i for i in churners if now - PLAYER_LAST.get(i, 0) < 30]
    rtmp_alive = sum(p.poll() is None for p in rtmp_players)

    # kill -9 under load: a ban, running tasks and hung callbacks are in place. The
    # state-changing load pauses (and its calls in flight finish) so that the state
    # before and after compare; players, publishers and garbage go on.
    FREEZE.set()
    time.sleep(20)
    zego("ForbidRTCStream", {"StreamId": "kept-ban", "Sequence": str(int(time.time() * 1000))})
    tasks_before = sorted(t["task_id"] for t in admin_json("/api/mix"))
    bans_before = cli("bans", "list").split()
    pending_before = len(cli("callbacks", "list", "--limit", "1000000").splitlines())
    server.send_signal(signal.SIGKILL)
    server.wait()
    t_kill = time.time()
    server = start_server()
    up_after = time.time() - t_kill
    deadline = time.time() + 30
    tasks_after = []
    while time.time() < deadline:
        tasks_after = sorted(t["task_id"] for t in admin_json("/api/mix"))
        if set(tasks_before) <= set(tasks_after):
            break
        time.sleep(0.5)
    bans_after = cli("bans", "list").split()
    pending_after = len(cli("callbacks", "list", "--limit", "1000000").splitlines())

    STOP.set()
    for p in steady + rtmp_players:
        stop(p)
    stop(server, signal.SIGTERM)

    def row(s):
        return f"| {s[0] / 60:4.1f} | {s[1]} | {s[2]} | {s[3]} | {s[4]:.0f} |"
    marks = []
    for m in range(0, int(MINUTES) + 1, 5):
        best = min(samples, key=lambda s: abs(s[0] - m * 60))
        if best not in marks:
            marks.append(best)
    if samples[-1] not in marks:
        marks.append(samples[-1])
    print(f"Soak: {MINUTES:g} min, {PLAYERS} players, on {os.cpu_count()} cores\n")
    print("| minute | RSS MiB | open FDs | threads | CPU-s so far |")
    print("|---|---|---|---|---|")
    for s in marks:
        print(row(s))
    warm = [s for s in samples if s[0] >= 300] or samples
    print(f"\nAfter warm-up (5 min on): RSS {min(s[1] for s in warm)}–{max(s[1] for s in warm)} MiB, "
          f"FDs {min(s[2] for s in warm)}–{max(s[2] for s in warm)}, "
          f"threads {min(s[3] for s in warm)}–{max(s[3] for s in warm)}; "
          f"CPU {samples[-1][4] / samples[-1][0]:.2f} cores on average.")
    if trim:
        print(f"\nmalloc_trim(0) at the end: RSS {trim[0]} → {trim[1]} MiB.")
    print(f"\nRequests: API {STATS['api_ok']} ok / {STATS['api_refused']} refused by rule / "
          f"{STATS['api_errors']} transport errors; mix calls {STATS['mix_ok']} ok / "
          f"{STATS['mix_refused']} refused / {STATS['mix_errors']} errors.")
    print(f"Players: {STATS['flv_connects']} HTTP-FLV connections ({STATS['flv_bytes'] / 1e9:.2f} GB, "
          f"{STATS['flv_errors']} errors), {STATS['hls_segments']} HLS segments ({STATS['hls_errors']} errors); "
          f"{STATS['publishers_started']} publishers started; {STATS['callbacks_held']} callback "
          f"connections held unanswered; {STATS['garbage_sent']} garbage connections.")
    print(f"At the end: {len(flowing)}/{len(steady_ids)} steady HTTP-FLV players, "
          f"{len(churn_flowing)}/{len(churners)} joining-and-leaving ones, {len(hls_flowing)}/{len(hls_ids)} HLS "
          f"players received media in the last 20–30 s; {rtmp_alive}/10 RTMP players still running.")
    if ERRORS:
        print("\nFailures by kind (a player that connects before its stream is live, a request")
        print("cut by the kill or the garbage, a mix refused by rule):\n")
        for k, n in sorted(ERRORS.items(), key=lambda x: -x[1])[:15]:
            print(f"- {n} × {k}")
    print(f"\nkill -9 under load, restart: up again in {up_after:.1f} s; tasks {tasks_before} → "
          f"{tasks_after}; bans {len(bans_before)} → {len(bans_after)} (same: {bans_before == bans_after}); "
          f"pending callbacks {pending_before} → {pending_after}.")
    ok = (len(flowing) == len(steady_ids) and rtmp_alive == 10 and set(tasks_before) <= set(tasks_after)
          and bans_before == bans_after and "kept-ban" in bans_after and pending_after >= 1)
    print(f"\nResult: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        code = main()
    finally:
        STOP.set()
        for p in PROCS:
            if p.poll() is None:
                p.kill()
        subprocess.run(["rm", "-rf", TMP])
    sys.exit(code)

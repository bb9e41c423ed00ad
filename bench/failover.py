#!/usr/bin/env python3
"""Failover time of a mix task between two nodes on one PostgreSQL (issue 16).

Starts a private PostgreSQL (initdb + pg_ctl in a temporary directory), two release
nodes on it, a red test picture published to both (a node mixes the streams it holds),
and one mix task on node A. Then KILLS times: kill -9 the node running the task, time
until the other node answers for it (GET /api/mix/{app}/{task}), start the killed node
again (same ports and data: same node id), and repeat. Prints one line per kill and
"failover p50=… max=…" in ms.

Usage: bench/failover.py BIN   (KILLS=10 by default)
"""
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchproc import free_port

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/tributary"
KILLS = int(os.environ.get("KILLS", "10"))
APP, SECRET, ADMIN = 1000, "0123456789abcdef0123456789abcdef", "bench-admin-token"
ROOT = os.geteuid() == 0


def pg_tool(name, *args):
    bins = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: int(v))
    exe = f"/usr/lib/postgresql/{bins[-1]}/bin/{name}"
    cmd = (["runuser", "-u", "postgres", "--"] if ROOT else []) + [exe, *args]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def get(url, admin=True):
    req = urllib.request.Request(url)
    if admin:
        req.add_header("Authorization", f"Bearer {ADMIN}")
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            body = r.read()
            try:
                return r.status, json.loads(body or b"null")
            except ValueError:
                return r.status, body.decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return 0, None


def signed(base, action):
    nonce = os.urandom(8).hex()
    ts = str(int(time.time()))
    sig = hashlib.md5(f"{APP}{nonce}{SECRET}{ts}".encode()).hexdigest()
    return (f"{base}/?Action={action}&AppId={APP}&SignatureNonce={nonce}&Timestamp={ts}"
            f"&Signature={sig}&SignatureVersion=2.0")


class Node:
    def __init__(self, name, tmp, store):
        self.name, self.http, self.rtmp = name, free_port(), free_port()
        self.data = os.path.join(tmp, name)
        self.store, self.proc, self.pub = store, None, None

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http}"

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "serve", "--http", f"127.0.0.1:{self.http}", "--rtmp", f"127.0.0.1:{self.rtmp}",
             "--rtc-udp", "127.0.0.1:0", "--data", self.data, "--store", self.store,
             "--app", f"{APP}:{SECRET}", "--admin-token", ADMIN, "--open-publish",
             "--no-rate-limits"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "warn"})
        deadline = time.time() + 30
        while get(f"{self.base}/readyz", admin=False)[0] != 200:
            if time.time() > deadline:
                sys.exit(f"{self.name} did not start")
            time.sleep(0.05)
        self.pub = subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
             "color=c=red:size=320x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440",
             "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15",
             "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{self.rtmp}/{APP}/red?room=room1&user={self.name}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while get(f"{self.base}/api/streams/{APP}/red")[0] != 200:
            if time.time() > deadline:
                sys.exit(f"red did not go live on {self.name}")
            time.sleep(0.05)

    def kill(self):
        for p in (self.proc, self.pub):
            if p:
                p.kill()
                p.wait()

    def runs_task(self):
        return get(f"{self.base}/api/mix/{APP}/fo")[0] == 200


def main():
    tmp = tempfile.mkdtemp(prefix="tributary-failover")
    if ROOT:
        shutil.chown(tmp, "postgres")
    pg = os.path.join(tmp, "pg")
    pg_port = free_port()
    pg_tool("initdb", "-D", pg, "-U", "tributary", "--auth=trust", "-E", "UTF8")
    pg_tool("pg_ctl", "-D", pg, "-l", os.path.join(tmp, "pg.log"), "-w",
            "-o", f"-p {pg_port} -k {tmp} -c listen_addresses=127.0.0.1", "start")
    store = f"postgres://tributary@127.0.0.1:{pg_port}/postgres"
    nodes = [Node("a", tmp, store), Node("b", tmp, store)]
    try:
        for n in nodes:
            n.start()
        body = json.dumps({
            "TaskId": "fo", "UserId": "bench", "RoomId": "room1", "Sequence": 1,
            "MixInput": [{"StreamId": "red", "RectInfo": {"Top": 0, "Left": 0, "Bottom": 240,
                                                         "Right": 320, "Layer": 1}}],
            "MixOutput": [{"StreamId": "fo-out", "Width": 320, "Height": 240, "Fps": 15,
                           "VideoBitrate": 400000, "AudioCodec": 1}]}).encode()
        req = urllib.request.Request(signed(nodes[0].base, "StartMix"), data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            answer = json.loads(r.read())
        if answer.get("Code") != 0:
            sys.exit(f"StartMix: {answer}")
        times = []
        for i in range(KILLS):
            owner = next(n for n in nodes if n.runs_task())
            other = next(n for n in nodes if n is not owner)
            owner.kill()
            killed = time.time()
            while not other.runs_task():
                if time.time() - killed > 30:
                    sys.exit("the task was not adopted within 30 s")
                time.sleep(0.02)
            ms = (time.time() - killed) * 1000
            times.append(ms)
            print(f"kill {i + 1}: node {owner.name} killed, task running on node {other.name} after {ms:.0f} ms",
                  flush=True)
            owner.start()
        print(f"failover p50={statistics.median(times):.0f} max={max(times):.0f} ms over {len(times)} kills "
              f"(lease 6 s, scan every 2 s)")
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.kill()
        pg_tool("pg_ctl", "-D", pg, "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

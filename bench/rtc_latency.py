#!/usr/bin/env python3
"""Glass-to-glass latency on loopback, WebRTC beside the other players, in one run.

A WHIP publisher (aiortc) sends a 320x240 picture that is black except for a bright flash
of 3 frames every second, and notes the wall time at which each flash was made. The
flash's grey level (135..240 in 8 steps) numbers it, so a reader seconds behind (HLS)
is matched with the right flash, not the last one.
Readers of the same stream note when they first decode each flash:
  WHEP   aiortc over WebRTC
  FLV    ffmpeg over HTTP-FLV (no buffering flags)
  HLS    ffmpeg over HLS (the newest segment first)
  MIX    aiortc over WHEP, reading a mix whose only input is the publisher
         (StartMix, 320x240@25, Opus out)
Latency = arrival - creation (same machine, same clock). Prints p50/p95 per reader.

Usage: bench/rtc_latency.sh   (runs this with the tools venv's Python)
       rtc_latency.py TRIBUTARY_BINARY [SECS]
"""
import asyncio
import fractions
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import aioice.ice
import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchproc import free_port, kill_all, spawn, stop  # noqa: E402

aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

BIN = sys.argv[1]
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
APP, SECRET = 1, "benchsecret"
FLASHES = []  # (flash number, wall time it was made)


def level(k):
    return 135 + 15 * (k % 8)


class Flash(VideoStreamTrack):
    def __init__(self):
        super().__init__()
        self.n = 0

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        k = self.n // 25
        bright = self.n % 25 < 3
        if self.n % 25 == 0:
            FLASHES.append((k, time.time()))
        self.n += 1
        img = np.full((240, 320, 3), level(k) if bright else 0, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


def http(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status, r.read().decode(), r.headers.get("Location")


def zego(base, action, body):
    ts, nonce = str(int(time.time())), "%016x" % random.getrandbits(64)
    sig = hashlib.md5(f"{APP}{nonce}{SECRET}{ts}".encode()).hexdigest()
    url = (f"{base}/?Action={action}&AppId={APP}&SignatureNonce={nonce}&Timestamp={ts}"
           f"&Signature={sig}&SignatureVersion=2.0")
    _, reply, _ = http("POST", url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    if json.loads(reply).get("Code") != 0:
        raise SystemExit(f"{action} failed: {reply}")


async def negotiate(pc, url):
    await pc.setLocalDescription(await pc.createOffer())
    status, answer, _ = http("POST", url, pc.localDescription.sdp.encode(),
                             {"Content-Type": "application/sdp"})
    assert status == 201, status
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


def h264_only(transceiver, caps):
    transceiver.setCodecPreferences([c for c in caps.codecs if c.mimeType == "video/H264"])


async def whep_edges(url, edges, secs):
    pc = RTCPeerConnection()
    h264_only(pc.addTransceiver("video", direction="recvonly"),
              RTCRtpReceiver.getCapabilities("video"))
    done = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        async def run():
            bright = False
            while not done.is_set():
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                y = frame.to_ndarray(format="gray")
                now = time.time()
                b = y.mean() > 100
                if b and not bright:
                    edges.append((now, float(y.mean())))
                bright = b
        asyncio.ensure_future(run())

    await negotiate(pc, url)
    await asyncio.sleep(secs)
    done.set()
    await pc.close()


def ffmpeg_edges(url, edges, extra=()):
    p = spawn(["ffmpeg", "-v", "error", "-fflags", "nobuffer", "-flags", "low_delay", *extra,
               "-i", url, "-an", "-vsync", "0", "-vf", "scale=8:8,format=gray",
               "-f", "rawvideo", "-"], stdout=subprocess.PIPE)

    def run():
        bright = False
        while True:
            buf = p.stdout.read(64)
            if len(buf) < 64:
                return
            mean = sum(buf) / 64
            b = mean > 100
            if b and not bright:
                edges.append((time.time(), mean))
            bright = b
    threading.Thread(target=run, daemon=True).start()
    return p


def latencies(edges):
    """Each arrival against the making of the flash with its number (grey level)."""
    out = []
    for t, mean in edges:
        idx = round((mean - 135) / 15) % 8
        made = [f for k, f in FLASHES if k % 8 == idx and f <= t and t - f < 8]
        if made:
            out.append((t - max(made)) * 1000)
    return out


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


async def main():
    tmp = tempfile.mkdtemp(prefix="tributary-rtclat-")
    rt, ht = free_port(), free_port()
    out = os.path.join(tmp, "server.out")
    server = spawn([BIN, "serve", "--open-publish", "--rtc-udp", "127.0.0.1:0", "--rtmp",
                    f"127.0.0.1:{rt}", "--http", f"127.0.0.1:{ht}", "--data",
                    os.path.join(tmp, "data"), "--app", f"{APP}:{SECRET}", "--no-rate-limits"],
                   stdout=open(out, "w"), env={**os.environ, "RUST_LOG": "warn",
                                              "TRIBUTARY_ADMIN_TOKEN": "bench"})
    base = f"http://127.0.0.1:{ht}"
    while "API listening" not in open(out).read():
        await asyncio.sleep(0.1)
    pub = RTCPeerConnection()
    h264_only(pub.addTransceiver(Flash(), direction="sendonly"),
              RTCRtpSender.getCapabilities("video"))
    await negotiate(pub, f"{base}/whip/{APP}/flash?room=lat&user=pub")
    await asyncio.sleep(2)
    zego(base, "StartMix", {"TaskId": "lat", "UserId": "u",
                            "MixInput": [{"StreamId": "flash", "RectInfo": {
                                "Top": 0, "Left": 0, "Bottom": 240, "Right": 320}}],
                            "MixOutput": [{"StreamId": "flash-mix", "Width": 320, "Height": 240,
                                           "Fps": 25, "VideoBitrate": 500000, "AudioCodec": 3}]})
    await asyncio.sleep(2)
    edges = {"WHEP": [], "FLV": [], "HLS": [], "MIX (WHEP)": []}
    readers = [ffmpeg_edges(f"{base}/{APP}/flash.flv", edges["FLV"]),
               ffmpeg_edges(f"{base}/{APP}/flash/playlist.m3u8", edges["HLS"],
                            ["-live_start_index", "-1"])]
    await asyncio.gather(whep_edges(f"{base}/whep/{APP}/flash", edges["WHEP"], SECS),
                         whep_edges(f"{base}/whep/{APP}/flash-mix", edges["MIX (WHEP)"], SECS))
    for p in readers:
        stop(p)
    await pub.close()
    stop(server)
    print(f"{os.cpu_count()} cores; {len(FLASHES)} flashes over {SECS} s; WHIP publisher aiortc")
    for name, e in edges.items():
        lat = latencies(e[2:])  # the first flashes include start-up
        print(f"{name:12s} p50 {pct(lat, 0.5):7.0f} ms  p95 {pct(lat, 0.95):7.0f} ms  (n={len(lat)})")


try:
    asyncio.run(main())
finally:
    kill_all()

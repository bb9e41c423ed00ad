"""A WHIP publisher made with aiortc (an independent WebRTC stack): a solid-colour
320x240 picture at 25 fps (H.264, or VP8) and a 440 Hz tone (Opus), for SECONDS, then
DELETE.

Usage: whip_publish.py WHIP_URL TOKEN SECONDS COLOUR(r,g,b) [H264|VP8]
Prints "status <code>" after the POST, "connected" once ICE and DTLS are up, and
"deleted <code>" at the end. Only loopback candidates are gathered, so every packet
stays on 127.0.0.1.
"""
import asyncio
import fractions
import math
import sys
import time

import av
import numpy as np
from whip_http import http, loopback_only, negotiate
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

# aioice leaves 127.0.0.1 out of its host addresses; the test keeps to loopback.
loopback_only()


class Colour(VideoStreamTrack):
    def __init__(self, rgb):
        super().__init__()
        self.rgb = rgb

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        img = np.zeros((240, 320, 3), dtype=np.uint8)
        img[:, :] = self.rgb
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Tone(AudioStreamTrack):
    """20 ms frames of a 440 Hz tone at 48 kHz, paced in real time."""

    def __init__(self):
        super().__init__()
        self.n = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        wait = self.start + self.n / 48000 - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(960) + self.n) / 48000.0
        tone = (0.25 * 32767 * np.sin(2 * math.pi * 440.0 * t)).astype(np.int16)
        out = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate, out.pts = 48000, self.n
        out.time_base = fractions.Fraction(1, 48000)
        self.n += 960
        return out


async def main():
    url, token, secs, colour = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    rgb = [int(c) for c in colour.split(",")]
    pc = RTCPeerConnection()
    video = pc.addTransceiver(Colour(rgb), direction="sendonly")
    codec = "video/" + (sys.argv[5] if len(sys.argv) > 5 else "H264")
    chosen = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == codec]
    video.setCodecPreferences(chosen)
    pc.addTransceiver(Tone(), direction="sendonly")
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    async def on_state():
        if pc.connectionState == "connected":
            connected.set()

    location = await negotiate(pc, url, token)
    if location is None:
        return
    await asyncio.wait_for(connected.wait(), 10)
    print("connected", flush=True)
    await asyncio.sleep(secs)
    base = url.split("/whip/")[0]
    status, _, _ = http("DELETE", base + location)
    print(f"deleted {status}", flush=True)
    await pc.close()


asyncio.run(main())

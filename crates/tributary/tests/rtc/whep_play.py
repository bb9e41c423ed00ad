"""A WHEP viewer made with aiortc: receives a stream for SECONDS and reports what it
decoded.

Usage: whep_play.py WHEP_URL TOKEN SECONDS [H264|VP8]
Prints "status <code>", then "video_frames N", "rgb R,G,B" (the centre of the last
picture), "audio_frames N", "audio_rms X" (0–1), and "deleted <code>". Loopback only.
"""
import asyncio
import sys

import numpy as np
from whip_http import http, loopback_only, negotiate
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError

loopback_only()


async def main():
    url, token, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
    pc = RTCPeerConnection()
    video = pc.addTransceiver("video", direction="recvonly")
    codec = "video/" + (sys.argv[4] if len(sys.argv) > 4 else "H264")
    chosen = [c for c in RTCRtpReceiver.getCapabilities("video").codecs if c.mimeType == codec]
    video.setCodecPreferences(chosen)
    pc.addTransceiver("audio", direction="recvonly")
    stats = {"video": 0, "audio": 0, "rgb": None, "rms": []}

    async def consume(track):
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    stats["video"] += 1
                    img = frame.to_ndarray(format="rgb24")
                    h, w = img.shape[:2]
                    stats["rgb"] = img[h // 2, w // 2].tolist()
                else:
                    stats["audio"] += 1
                    pcm = frame.to_ndarray().astype(np.float64) / 32768.0
                    stats["rms"].append(float(np.sqrt(np.mean(pcm * pcm))))
        except MediaStreamError:
            pass

    tasks = []

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.ensure_future(consume(track)))

    location = await negotiate(pc, url, token)
    if location is None:
        return
    await asyncio.sleep(secs)
    print(f"video_frames {stats['video']}", flush=True)
    if stats["rgb"]:
        print("rgb " + ",".join(str(c) for c in stats["rgb"]), flush=True)
    print(f"audio_frames {stats['audio']}", flush=True)
    rms = stats["rms"][len(stats["rms"]) // 2:]
    print(f"audio_rms {sum(rms) / len(rms) if rms else 0:.4f}", flush=True)
    base = url.split("/whep/")[0]
    status, _, _ = http("DELETE", base + location)
    print(f"deleted {status}", flush=True)
    await pc.close()


asyncio.run(main())

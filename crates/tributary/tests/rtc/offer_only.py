"""Sends COUNT (default 1) WHEP offers and never connects (a client that went away, or a
flood): prints each POST's status and exits without answering ICE."""
import asyncio
import sys

from whip_http import http, loopback_only
from aiortc import RTCPeerConnection

loopback_only()


async def main():
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    for _ in range(count):
        pc = RTCPeerConnection()
        pc.addTransceiver("video", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        status, _, _ = http("POST", sys.argv[1], pc.localDescription.sdp.encode(),
                            {"Content-Type": "application/sdp"})
        print(f"status {status}", flush=True)
    # Gone without a word: no ICE check ever reaches the server.


asyncio.run(main())

"""What the test WebRTC clients share: WHIP/WHEP HTTP calls, and keeping aiortc on
loopback (aioice leaves 127.0.0.1 out of its host addresses by default)."""
import urllib.error
import urllib.request

import aioice.ice
from aiortc import RTCSessionDescription


def loopback_only():
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def http(method, url, body=None, headers=None):
    """(status, body text, Location) of one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode(), r.headers.get("Location")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), None


async def negotiate(pc, url, token):
    """Offers, POSTs, and applies the answer; prints "status <code>". The resource's
    Location, or None when the server refused (the peer connection is then closed)."""
    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, answer, location = http("POST", url, pc.localDescription.sdp.encode(), headers)
    print(f"status {status}", flush=True)
    if status != 201:
        print(answer, flush=True)
        await pc.close()
        return None
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return location

"""What the test WebRTC clients share: WHIP/WHEP HTTP calls, and keeping aiortc on
loopback (aioice leaves 127.0.0.1 out of its host addresses by default)."""
import urllib.error
import urllib.request

import aioice.ice


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

#!/usr/bin/env python3
"""Builds the fuzz seed corpora from a real FFmpeg-encoded FLV clip.

flv_hls: the FLV file itself (and its first 4 KiB).
rtmp_session: a publisher's byte stream after the handshake (connect, createStream,
publish, @setDataFrame, then the clip's tags as RTMP messages), prefixed with the split
byte the target reads first.
amf0: the command payloads.
Usage: make_seeds.py OUT_DIR (needs ffmpeg).
"""
import os, struct, subprocess, sys, tempfile

out = sys.argv[1]
for d in ("flv_hls", "rtmp_session", "amf0"):
    os.makedirs(os.path.join(out, d), exist_ok=True)

with tempfile.TemporaryDirectory() as t:
    clip = os.path.join(t, "clip.flv")
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10",
                    "-f", "lavfi", "-i", "sine=sample_rate=8000", "-t", "1.5", "-c:v", "libx264",
                    "-g", "5", "-c:a", "aac", "-y", clip], check=True)
    flv = open(clip, "rb").read()
open(os.path.join(out, "flv_hls", "clip.flv"), "wb").write(flv)
open(os.path.join(out, "flv_hls", "head.flv"), "wb").write(flv[:4096])

def amf_str(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b
def amf_num(n):
    return b"\x00" + struct.pack(">d", n)
def amf_obj(props):
    b = b"\x03"
    for k, v in props:
        kb = k.encode()
        b += struct.pack(">H", len(kb)) + kb + v
    return b + b"\x00\x00\x09"
NULL = b"\x05"

def chunk(csid, typ, sid, ts, payload, size=128):
    b = bytes([csid]) + ts.to_bytes(3, "big") + len(payload).to_bytes(3, "big") + bytes([typ]) + struct.pack("<I", sid)
    b += payload[:size]
    rest = payload[size:]
    while rest:
        b += bytes([0xC0 | csid]) + rest[:size]
        rest = rest[size:]
    return b

cmds = [
    amf_str("connect") + amf_num(1) + amf_obj([("app", amf_str("12345")), ("tcUrl", amf_str("rtmp://h/12345"))]),
    amf_str("createStream") + amf_num(2) + NULL,
    amf_str("publish") + amf_num(3) + NULL + amf_str("s1?room=r&user=u&token=1.00") + amf_str("live"),
]
for i, c in enumerate(cmds):
    open(os.path.join(out, "amf0", f"cmd{i}"), "wb").write(c)
stream = b"".join(chunk(3, 20, 0 if i < 2 else 1, 0, c) for i, c in enumerate(cmds))
meta = amf_str("@setDataFrame") + amf_str("onMetaData") + amf_obj([("width", amf_num(96)), ("height", amf_num(64))])
open(os.path.join(out, "amf0", "meta"), "wb").write(meta)
stream += chunk(4, 18, 1, 0, meta)
pos = 13
while pos + 11 <= len(flv):
    typ = flv[pos]
    size = int.from_bytes(flv[pos+1:pos+4], "big")
    ts = int.from_bytes(flv[pos+4:pos+7], "big") | (flv[pos+7] << 24)
    body = flv[pos+11:pos+11+size]
    if typ in (8, 9):
        stream += chunk(6 if typ == 9 else 4, typ, 1, ts, body)
    pos += 11 + size + 4
stream += chunk(3, 20, 1, 0, amf_str("FCUnpublish") + amf_num(4) + NULL + amf_str("s1"))
for split in (0, 7, 63):
    open(os.path.join(out, "rtmp_session", f"publish_split{split}"), "wb").write(bytes([split]) + stream)
print(f"seeds in {out}: flv {len(flv)} bytes, rtmp stream {len(stream)} bytes")

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

# Text targets: real request shapes.
def seed(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    open(os.path.join(out, target, name), "wb").write(data)

seed("zego_params", "startmix",
     b"Action=StartMix&AppId=1234567890&SignatureNonce=15215528852396&Timestamp=1700000000"
     b"&Signature=abc&SignatureVersion=2.0&StreamId%5B%5D=a&StreamId[]=b&StreamId=c\xff"
     b'{"TaskId":"t1","MixInput":[{"StreamId":"a","RectInfo":{"Top":0}}],"Sequence":3,"X":null}')
seed("tencent_params", "sdk_get",
     b"\x00MixStreamSessionId=test_room&InputStreamList.0.InputStreamName=canvas1"
     b"&InputStreamList.0.LayoutParams.ImageLayer=1&InputStreamList.0.LayoutParams.InputType=3"
     b"&InputStreamList.1.InputStreamName=s1&InputStreamList.1.LayoutParams.ImageLayer=2"
     b"&InputStreamList.1.CropParams.CropWidth=640&OutputParams.OutputStreamName=mix_out")
seed("tencent_params", "json",
     b'\x01{"MixStreamSessionId":"r","InputStreamList":[{"InputStreamName":"canvas1","LayoutParams":'
     b'{"ImageLayer":1,"InputType":3,"ImageWidth":320,"ImageHeight":240,"Color":"0x0000FF"}},'
     b'{"InputStreamName":"red","LayoutParams":{"ImageLayer":2,"ImageWidth":0.5}}],'
     b'"OutputParams":{"OutputStreamName":"o","OutputStreamType":1},"MixStreamTemplateId":390}')
seed("tc3_request", "tc3",
     b"POST\x00\x00TC3-HMAC-SHA256 Credential=AKIDFUZZ/2023-11-14/live/tc3_request, "
     b"SignedHeaders=content-type;host, Signature=0123456789abcdef\x001700000000\x00"
     b'127.0.0.1:8080\x00{"MixStreamSessionId":"x"}')
seed("tc3_request", "legacy",
     b"POST\x00\x00\x00\x00127.0.0.1:8080\x00Action=CancelCommonMixStream&Nonce=1&SecretId=AKIDFUZZ"
     b"&SignatureMethod=HmacSHA256&Timestamp=1700000000&Version=2018-08-01&Signature=abc%3D")
for i, u in enumerate([b"rtmp://example.com:1935/live/key?token=x", b"http://[::ffff:127.0.0.1]/a.flv",
                       b"https://user@h/a/b/c.png?sig=1#f", b"file:///etc/passwd"]):
    seed("url_policy", f"u{i}", u)

"""Drives a running tributary with Tencent's official Python SDK (tencentcloud-sdk-python-
live), unchanged: the endpoint points at the server. Prints one JSON object of results.

Usage: tencent_sdk.py HOST:PORT SECRET_ID SECRET_KEY
"""

import json
import sys
import time

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.live.v20180801 import live_client, models

endpoint, secret_id, secret_key = sys.argv[1:4]


def client(key=secret_key, method="POST", sign=None):
    http = HttpProfile(protocol="http", endpoint=endpoint, reqMethod=method)
    profile = ClientProfile(signMethod=sign, httpProfile=http)
    return live_client.LiveClient(credential.Credential(secret_id, key), "", profile)


def call(fn):
    try:
        resp = fn()
        return {"ok": True, "request_id": resp.RequestId}
    except TencentCloudSDKException as e:
        return {"ok": False, "code": e.get_code(), "message": e.get_message(), "request_id": e.get_request_id()}


def layer(name, layer, **kw):
    p = models.CommonMixInputParam()
    p.InputStreamName = name
    lp = models.CommonMixLayoutParams()
    lp.ImageLayer = layer
    for k, v in kw.items():
        setattr(lp, k, v)
    p.LayoutParams = lp
    return p


def create(session, inputs, output, template=None, crop=None, c=None):
    req = models.CreateCommonMixStreamRequest()
    req.MixStreamSessionId = session
    if crop is not None:
        cp = models.CommonMixCropParams()
        cp.CropWidth, cp.CropHeight, cp.CropStartLocationX, cp.CropStartLocationY = crop
        inputs[1].CropParams = cp
    req.InputStreamList = inputs
    out = models.CommonMixOutputParams()
    out.OutputStreamName = output
    out.OutputStreamType = 1
    out.OutputStreamFrameRate = 15
    out.OutputStreamBitRate = 500
    req.OutputParams = out
    if template is not None:
        req.MixStreamTemplateId = template
    return call(lambda: (c or client()).CreateCommonMixStream(req))


def cancel(session, c=None):
    req = models.CancelCommonMixStreamRequest()
    req.MixStreamSessionId = session
    return call(lambda: (c or client()).CancelCommonMixStream(req))


def canvas():
    return layer("canvas1", 1, InputType=3, ImageWidth=320, ImageHeight=240, Color="0x0000FF")


mode = sys.argv[4] if len(sys.argv) > 4 else "all"
out = {}
if mode in ("all", "template"):
    out["template"] = create("sdk_pk", [canvas(), layer("red", 2), layer("green", 3)], "sdk_mix", template=390)
if mode in ("all", "rest"):
    out["custom_with_crop"] = create(
        "sdk_custom",
        [canvas(), layer("red", 2, ImageWidth=0.5, ImageHeight=240, LocationX=0, LocationY=0)],
        "sdk_custom_out",
        crop=(80, 60, 0, 0),
    )
    out["update"] = create(
        "sdk_pk",
        [canvas(), layer("green", 2, ImageWidth=160, ImageHeight=240, LocationX=0, LocationY=0),
         layer("red", 3, ImageWidth=160, ImageHeight=240, LocationX=160, LocationY=0)],
        "sdk_mix",
    )
    out["cancel"] = cancel("sdk_pk")
    # TC3 signs no nonce: the same request within the same second would be a replay
    # (refused with AuthFailure.SignatureFailure), so the second cancel waits a second.
    time.sleep(1.1)
    out["cancel_again"] = cancel("sdk_pk")
    out["bad_key"] = cancel("sdk_pk", client(key="not-the-key"))
    out["get_mode"] = cancel("sdk_pk", client(method="GET"))
    out["hmac_sha256"] = cancel("sdk_pk", client(sign="HmacSHA256"))
print(json.dumps(out))

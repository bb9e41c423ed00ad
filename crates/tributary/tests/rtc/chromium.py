"""Debian's Chromium (headless, driven by Playwright with the system browser: nothing is
downloaded) against tributary's WebRTC plane:

  publish: its fake camera and microphone over WHIP (H.264 preferred, as browsers do),
  play:    a stream over WHEP in a <video>; reports frames decoded and playback time.
  play-tcp: the same as if the server's UDP were unreachable: the page drops the
           answer's UDP candidates, so only ICE-TCP can connect.

Usage: chromium.py BASE_URL APP MODE STREAM [TOKEN] [SECONDS]
  MODE publish: prints {"status": 201, "connected": true, "twcc": B} (B: whether the answer
                kept transport-wide congestion control), keeps publishing SECONDS, then
                DELETEs and prints {"deleted": 200}.
  MODE play:    prints {"status": 201, "twcc": B, "frames": N, "time_advanced": T,
                "width": W, "protocol": "udp"|"tcp"} after SECONDS.
The page is the server's own origin (http://127.0.0.1 is a secure context), so the
fetches are same-origin.
"""
import json
import sys
import time

from playwright.sync_api import sync_playwright

PUBLISH = """
async ([url, token]) => {
  const media = await navigator.mediaDevices.getUserMedia(
    {video: {width: 320, height: 240, frameRate: 25}, audio: true});
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, {direction: 'sendonly'});
    if (track.kind === 'video') {
      t.setCodecPreferences(RTCRtpSender.getCapabilities('video').codecs
        .filter(c => c.mimeType === 'video/H264'));
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => pc.iceGatheringState === 'complete' ? r() :
    pc.addEventListener('icegatheringstatechange',
      () => pc.iceGatheringState === 'complete' && r()));
  const res = await fetch(url, {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}});
  const answer = await res.text();
  if (res.status !== 201) return {status: res.status, body: answer};
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  const connected = await new Promise(r => {
    const check = () => pc.connectionState === 'connected' && r(true);
    pc.addEventListener('connectionstatechange', check);
    setTimeout(() => r(pc.connectionState === 'connected'), 10000);
    check();
  });
  window.publisher = {pc, location: res.headers.get('Location')};
  return {status: res.status, connected, twcc: answer.includes('transport-wide-cc')};
}
"""

PLAY = """
async ([url, token, tcpOnly]) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  const stream = new MediaStream();
  pc.ontrack = e => { stream.addTrack(e.track); video.srcObject = stream; };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => pc.iceGatheringState === 'complete' ? r() :
    pc.addEventListener('icegatheringstatechange',
      () => pc.iceGatheringState === 'complete' && r()));
  const headers = {'Content-Type': 'application/sdp'};
  if (token) headers['Authorization'] = 'Bearer ' + token;
  const res = await fetch(url, {method: 'POST', body: pc.localDescription.sdp, headers});
  let answer = await res.text();
  if (res.status !== 201) return {status: res.status, body: answer};
  if (tcpOnly) {
    answer = answer.split('\\r\\n')
      .filter(l => !(l.startsWith('a=candidate') && / udp /i.test(l))).join('\\r\\n');
  }
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  window.viewer = {pc, video};
  return {status: res.status, twcc: answer.includes('transport-wide-cc')};
}
"""

STATS = """
async () => {
  const {pc, video} = window.viewer;
  let frames = 0, pair = null;
  const stats = await pc.getStats();
  stats.forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') frames = s.framesDecoded || 0;
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  const local = pair && stats.get(pair.localCandidateId);
  return {frames, time: video.currentTime, width: video.videoWidth,
          protocol: local ? local.protocol : null};
}
"""


def main():
    base, app, mode, stream = sys.argv[1:5]
    token = sys.argv[5] if len(sys.argv) > 5 else ""
    secs = float(sys.argv[6]) if len(sys.argv) > 6 else 3
    with sync_playwright() as p:
        args = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page()
        page.goto(f"{base}/healthz")
        if mode == "publish":
            url = f"{base}/whip/{app}/{stream}?room=room1&user=u1"
            print(json.dumps(page.evaluate(PUBLISH, [url, token])), flush=True)
            time.sleep(secs)
            deleted = page.evaluate(
                "async (base) => (await fetch(base + window.publisher.location, {method: 'DELETE'})).status",
                base)
            print(json.dumps({"deleted": deleted}), flush=True)
        else:
            url = f"{base}/whep/{app}/{stream}"
            r = page.evaluate(PLAY, [url, token, mode == "play-tcp"])
            if r.get("status") == 201:
                time.sleep(0.5)
                first = page.evaluate(STATS)
                time.sleep(secs)
                last = page.evaluate(STATS)
                r.update(frames=last["frames"], time_advanced=last["time"] - first["time"],
                         width=last["width"], protocol=last["protocol"])
            print(json.dumps(r), flush=True)
        browser.close()


main()

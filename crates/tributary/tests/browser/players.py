"""Plays a live stream in Debian's Chromium (headless) with the browser player web pages
really use — hls.js for HLS, mpegts.js for HTTP-FLV — and reports what the <video>
did: how far currentTime advanced and the colours at given points of the picture.

Usage: players.py PLAYERS_DIR hls|flv URL SECONDS X,Y [X,Y ...]
  (PLAYERS_DIR: the folder whose node_modules hold hls.js and mpegts.js, crates/tributary/console)
  (X, Y: fractions of the picture's width and height)
Prints one JSON line: {"advanced": s, "width": w, "height": h, "colours": [[r,g,b], ...]}
or {"error": "..."}.
"""
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

SCRIPTS = {"hls": "hls.js/dist/hls.min.js", "flv": "mpegts.js/dist/mpegts.js"}

START = {
    "hls": """url => { const v = document.getElementById('v');
        if (!Hls.isSupported()) throw new Error('hls.js: MSE unsupported');
        const h = new Hls(); h.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) window.failure = d.type + ' ' + d.details; });
        h.loadSource(url); h.attachMedia(v); v.play().catch(() => {}); }""",
    "flv": """url => { const v = document.getElementById('v');
        if (!mpegts.getFeatureList().mseLivePlayback) throw new Error('mpegts.js: no MSE live playback');
        const p = mpegts.createPlayer({type: 'flv', isLive: true, url: url});
        p.on(mpegts.Events.ERROR, (t, d) => { window.failure = t + ' ' + d; });
        p.attachMediaElement(v); p.load(); p.play(); }""",
}

GRAB = """points => { const v = document.getElementById('v');
    const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
    const g = c.getContext('2d'); g.drawImage(v, 0, 0);
    return {width: c.width, height: c.height, colours: points.map(([x, y]) =>
        Array.from(g.getImageData(Math.floor(x * c.width), Math.floor(y * c.height), 1, 1).data.slice(0, 3)))}; }"""


def main():
    players, kind, url, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    points = [[float(v) for v in p.split(",")] for p in sys.argv[5:]]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            page.set_content("<video id='v' muted autoplay playsinline></video>")
            page.add_script_tag(path=os.path.join(players, "node_modules", SCRIPTS[kind]))
            page.evaluate(START[kind], url)
            # From the first frame shown, currentTime must advance by `secs`.
            deadline = time.time() + 20 + secs
            first = None
            while time.time() < deadline:
                state = page.evaluate("() => [document.getElementById('v').currentTime, window.failure || null]")
                if state[1]:
                    print(json.dumps({"error": state[1]}))
                    return
                if first is None and state[0] > 0:
                    first = state[0]
                if first is not None and state[0] - first >= secs:
                    break
                time.sleep(0.2)
            now = page.evaluate("() => document.getElementById('v').currentTime")
            out = page.evaluate(GRAB, points)
            out["advanced"] = now - (first or now)
            print(json.dumps(out), flush=True)
        finally:
            browser.close()


if __name__ == "__main__":
    main()

"""Drives tributary's console in Debian's Chromium (headless) as an operator would.

Usage: console.py BASE_URL TOKEN login|refused [SCREENSHOT_DIR]
  login:   opens /console/#token=TOKEN, reads the streams and mix tasks views, opens the
           first task's preview and lets it play; screenshots each page if asked.
  refused: opens /console/#token=TOKEN (a wrong one) and reports what the page shows.
Prints one JSON line.
"""
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright


def rows(page, tbody):
    return page.eval_on_selector_all(f"#{tbody} tr", "trs => trs.map(t => t.innerText)")


def wait_colours(page, points, done, timeout=20):
    """The preview's colours at `points` once `done(colours)` holds (or the last seen)."""
    deadline = time.time() + timeout
    colours = None
    while time.time() < deadline:
        got = page.evaluate("""points => { const v = document.getElementById('preview-video');
            if (!v.videoWidth || v.currentTime < 0.5) return null;
            const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
            const g = c.getContext('2d'); g.drawImage(v, 0, 0);
            return points.map(([x, y]) => Array.from(g.getImageData(Math.floor(x * c.width), Math.floor(y * c.height), 1, 1).data.slice(0, 3))); }""",
                            [list(p) for p in points])
        if got:
            colours = got
            if done(got):
                break
        time.sleep(0.2)
    return colours


def main():
    base, token, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    shots = sys.argv[4] if len(sys.argv) > 4 else None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 640})
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # Uncaught exceptions only: players log expected errors (a preview tried before
            # its stream is live) to the console.
            page.goto(f"{base}/console/#token={token}")
            out = {"hash_after_load": page.evaluate("() => location.hash")}
            if mode == "refused":
                page.wait_for_selector("#refused", state="visible", timeout=10000)
                out.update(refused=True, streams=rows(page, "stream-rows"), mixes=rows(page, "mix-rows"),
                           login_shown=page.is_visible("#login"), errors=errors)
                print(json.dumps(out))
                return
            page.wait_for_function("() => document.querySelectorAll('#stream-rows tr').length >= 2", timeout=15000)
            out["streams"] = rows(page, "stream-rows")
            if shots:
                page.screenshot(path=os.path.join(shots, "streams.png"))
            page.click("nav button[data-view=rooms]")
            page.wait_for_function("() => document.getElementById('room-rows').innerText.includes('room1')", timeout=10000)
            out["rooms"] = rows(page, "room-rows")
            if shots:
                page.screenshot(path=os.path.join(shots, "rooms.png"))
            page.click("nav button[data-view=mixes]")
            page.wait_for_function("() => document.querySelectorAll('#mix-rows tr').length >= 1", timeout=15000)
            # Let the task's figures settle (fps is measured over its running time).
            time.sleep(2.5)
            out["mixes"] = rows(page, "mix-rows")
            page.click("#mix-rows tr")
            page.wait_for_function("() => document.getElementById('preview-video').currentTime > 2", timeout=20000)
            out["preview"] = page.evaluate("""() => { const v = document.getElementById('preview-video');
                return {name: document.getElementById('preview-name').innerText, time: v.currentTime,
                        width: v.videoWidth, height: v.videoHeight}; }""")
            if shots:
                page.screenshot(path=os.path.join(shots, "mix-tasks.png"))
            page.click("nav button[data-view=metrics]")
            page.fill("#metric-filter", "tributary_mix")
            page.wait_for_function("() => document.querySelectorAll('#metric-rows tr').length >= 1", timeout=10000)
            out["metrics"] = len(rows(page, "metric-rows"))
            page.wait_for_function("() => document.querySelectorAll('#charts canvas').length === 4", timeout=10000)
            time.sleep(2.5)  # a second sample, so the rate chart has a value
            out["charts"] = page.eval_on_selector_all("#charts .chart", "cs => cs.map(c => c.innerText.trim())")
            if shots:
                page.screenshot(path=os.path.join(shots, "metrics.png"))
            # The layout editor: two streams in a grid, applied (StartMix), then the second
            # tile dragged over the first and applied again (a live update): the preview's
            # pixels follow. Then Stop.
            page.click("nav button[data-view=layout]")
            try:
                page.wait_for_selector("#ed-streams input[data-stream=red]", timeout=10000)
            except Exception:
                print(json.dumps({"error": "the editor lists no streams", "errors": errors}))
                return
            page.check("#ed-streams input[data-stream=red]")
            page.check("#ed-streams input[data-stream=blue]")
            page.click("#ed-apply")
            page.wait_for_function("() => document.getElementById('ed-result').innerText.includes('StartMix: done')", timeout=10000)
            out["before"] = wait_colours(page, [(0.25, 0.5), (0.75, 0.5)], lambda c: c[0][0] > 200 and c[1][2] > 200)
            if shots:
                page.screenshot(path=os.path.join(shots, "layout-editor.png"), full_page=True)
            box = page.locator(".tile[data-stream=blue]").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.mouse.down()
            page.mouse.move(box["x"] - box["width"] / 2, box["y"] + box["height"] / 2, steps=8)
            page.mouse.up()
            out["dragged"] = page.inner_text("#ed-rect")
            page.click("#ed-apply")
            out["after"] = wait_colours(page, [(0.25, 0.5), (0.75, 0.5)], lambda c: c[0][2] > 200 and max(c[1]) < 60)
            page.click("#ed-stop")
            page.wait_for_function("() => document.getElementById('ed-result').innerText.includes('StopMix: done')", timeout=10000)
            out["stopped"] = page.inner_text("#ed-result")
            # Tencent's template 20 as a preset (boxes from the dialect's table): red is the
            # background, blue the bottom-right third. Then red resized by its grip toward
            # blue's corner: its edges stick to blue's (220 is off the 8 px grid).
            out["template_options"] = page.eval_on_selector("#ed-templates", "g => g.children.length")
            page.select_option("#ed-preset", "tc:20")
            out["template_blue"] = page.eval_on_selector(
                ".tile[data-stream=blue]", "d => [d.style.left, d.style.top, d.style.width, d.style.height]")
            grip = page.locator(".tile[data-stream=red] .grip").bounding_box()
            gx, gy = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
            page.mouse.move(gx, gy)
            page.mouse.down()
            page.mouse.move(gx - 229, gy - 137, steps=8)
            page.mouse.up()
            out["snapped"] = page.inner_text("#ed-rect")
            # Callbacks the receiver refused are pending, with their error.
            # (Pending while they are retried, failed once the retries ran out: the tests'
            # retries are fast.)
            page.click("nav button[data-view=callbacks]")
            deadline = time.time() + 15
            while time.time() < deadline:
                for state in ("pending", "failed"):
                    page.select_option("#cb-state", state)
                    time.sleep(0.5)
                    found = rows(page, "cb-rows")
                    if found:
                        out["callbacks"] = found[:5]
                        out["callback_state"] = state
                        break
                if "callbacks" in out:
                    break
            if shots:
                page.screenshot(path=os.path.join(shots, "callbacks.png"))
            # Forbid a stream from the console, see it listed, resume it.
            page.click("nav button[data-view=bans]")
            page.wait_for_function("() => document.getElementById('ban-app').value !== ''", timeout=10000)
            page.fill("#ban-stream", "red")
            page.click("#ban-forbid")
            page.wait_for_function("() => document.getElementById('ban-result').innerText.includes('ForbidRTCStream')", timeout=10000)
            out["forbid"] = page.inner_text("#ban-result")
            page.wait_for_function("() => document.getElementById('ban-rows').innerText.includes('red')", timeout=10000)
            out["banned"] = rows(page, "ban-rows")
            if shots:
                page.screenshot(path=os.path.join(shots, "bans.png"))
            page.click("#ban-rows button")
            page.wait_for_function("() => document.getElementById('ban-result').innerText.includes('ResumeRTCStream')", timeout=10000)
            out["resume"] = page.inner_text("#ban-result")
            page.wait_for_function("() => document.querySelectorAll('#ban-rows tr').length === 0", timeout=10000)
            out["session_token"] = page.evaluate("() => sessionStorage.getItem('tributary-token') !== null")
            out["errors"] = errors
            print(json.dumps(out))
        finally:
            browser.close()


if __name__ == "__main__":
    main()

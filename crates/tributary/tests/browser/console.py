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
            if shots:
                page.screenshot(path=os.path.join(shots, "metrics.png"))
            out["session_token"] = page.evaluate("() => sessionStorage.getItem('tributary-token') !== null")
            out["errors"] = errors
            print(json.dumps(out))
        finally:
            browser.close()


if __name__ == "__main__":
    main()

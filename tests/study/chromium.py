"""Headless Chromium driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``):
no extra Python package, no port, no browser download; Debian's ``chromium`` package is enough.

Chromium reads protocol messages (JSON, each ended by a NUL byte) on file descriptor 3 and writes
its answers and events on descriptor 4, as Playwright and Puppeteer drive it. :class:`Page` opens
one page, records console errors, uncaught exceptions and every network request, and offers what
the report tests need: evaluate JavaScript, click at an element, take a screenshot.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe")


def executable() -> str | None:
    """The first Chromium found on PATH; None when there is none."""
    return next((found for name in EXECUTABLES if (found := shutil.which(name))), None)


class ProtocolError(RuntimeError):
    pass


class Page:
    """One headless Chromium with one page of ``width`` x ``height`` CSS pixels. Use as a context manager."""

    def __init__(self, width: int = 1366, height: int = 768, timeout: float = 30.0) -> None:
        browser = executable()
        if browser is None:
            raise FileNotFoundError("no chromium on PATH")
        self.timeout, self.events, self._next_id, self._buffer = timeout, [], 0, b""
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def descriptors() -> None:  # in the child: the pipe ends as descriptors 3 and 4
            high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen([browser, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        preexec_fn=descriptors, pass_fds=(3, 4))  # noqa: PLW1509 - no threads here
        os.close(to_browser_r)
        os.close(from_browser_w)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=True)

    # ---------------------------------------------------------------------------- the protocol
    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ProtocolError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        """Send one command and wait for its result; events that arrive meanwhile are kept in ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise ProtocolError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str) -> dict:
        deadline = time.monotonic() + self.timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event.get("method") == method:
                    return event
            seen = len(self.events)
            self.events.append(self._read(deadline))

    # ---------------------------------------------------------------------------- what tests use
    def open(self, url: str) -> None:
        """Navigate and wait for the load event (every image decoded or failed)."""
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=True)
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of the first element matching ``selector``."""
        box = self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                            "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1}, session=True)

    def screenshot(self, selector: str | None = None) -> bytes:
        """PNG of the viewport, or of the element matching ``selector`` (in page coordinates)."""
        params: dict = {"format": "png"}
        if selector:
            box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                                ".getBoundingClientRect(); "
                                "return [r.x + scrollX, r.y + scrollY, r.width, r.height]; })()")
            params |= {"clip": {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1},
                       "captureBeyondViewport": True}
        return base64.b64decode(self.call("Page.captureScreenshot", params, session=True)["data"])

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries so far."""
        out = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(json.dumps(params["exceptionDetails"])[:300])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(json.dumps(params.get("args"))[:300])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(f"{params['entry'].get('text')} {params['entry'].get('url', '')}"[:300])
        return out

    def requests(self) -> list[str]:
        """The URL of every network request the page made (``data:`` URLs included)."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    # ---------------------------------------------------------------------------- closing
    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (ProtocolError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def save_screenshots(report: Path, out: Path, target: str, width: int = 1366) -> list[Path]:
    """The documentation's pictures of a report: its first comparison table and ``target``'s gallery
    (documentation/images/report_*.png: ``save_screenshots(report, Path("documentation/images"), "stroke")``)."""
    out.mkdir(parents=True, exist_ok=True)
    with Page(width=width, height=900) as page:
        page.open(report.resolve().as_uri())
        written = []
        for name, selector in (("report_table.png", "#comparison ~ table"),
                               ("report_gallery.png", f"#gallery-{target}")):
            (out / name).write_bytes(page.screenshot(selector))
            written.append(out / name)
    return written

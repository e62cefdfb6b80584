"""A headless Chromium cut off from the network, driven over the DevTools protocol.

The browser talks the protocol over a pipe (``--remote-debugging-pipe``: it reads
commands on its fd 3 and writes replies and events on fd 4, each message JSON ended
by a NUL byte), so no port, websocket library or driver is needed. Every host but
127.0.0.1 is unresolvable and every connection that is not to loopback goes to a
closed proxy port: a page can only load what the local server serves.
"""

from __future__ import annotations

import base64
import fcntl
import functools
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

REQUIRE_ENV = "NEXUSLIMS_LIFECYCLE_REQUIRE_BROWSER"
HOW_TO_ENABLE = (
    "Chromium not found (chromium, chromium-browser or google-chrome on PATH): install it "
    "(Debian: apt-get install -y chromium) to run the browser tests; "
    f"set {REQUIRE_ENV}=1 to make its absence an error"
)
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--window-size=1280,1400",
    # No name resolves but loopback; any other connection goes to a closed port.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
)
# A guard against hanging, never a measure of speed: each wait normally takes < 1 s.
PATIENCE = 60.0


def find_chromium() -> str:
    """Return the Chromium binary; skip (or, in CI, fail) saying how to install it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(HOW_TO_ENABLE)
    pytest.skip(HOW_TO_ENABLE)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - the standard handler's own class attribute
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",  # module scripts need a JavaScript type
    }

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port); yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Browser:
    """One Chromium process, one page, and every console error the page produced."""

    def __init__(self, binary: str, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        # High copies first, so placing them on fds 3 and 4 cannot overwrite each other.
        keep = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands_read, replies_write)]

        def on_fds_3_and_4() -> None:  # runs in the child, between fork and exec
            os.dup2(keep[0], 3)
            os.dup2(keep[1], 4)

        self._process = subprocess.Popen(
            [binary, *OFFLINE_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=on_fds_3_and_4,  # noqa: PLW1509 - called before any thread starts
            close_fds=False,  # keeps the inheritable fds 3 and 4 (Python's own are not)
        )
        for fd in (commands_read, replies_write, *keep):
            os.close(fd)
        self._buffer = b""
        self._last_id = 0
        self._session: str | None = None
        self.errors: list[str] = []

    def close(self) -> None:
        """Ask the browser to quit, then make sure it has."""
        with suppress(OSError, RuntimeError):
            self.send("Browser.close", session=False)
        try:
            self._process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._commands)
        os.close(self._replies)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: bool = True
    ) -> Any:
        """Send one protocol command (to the page, once opened) and return its result."""
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session and self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self._note(reply)

    def open(self, url: str) -> None:
        """Open a page on ``url``, recording console errors, exceptions and failed loads."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session = attached["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})

    def wait_for(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page until it gives a value other than null."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            result = self.send(
                "Runtime.evaluate", {"expression": expression, "returnByValue": True}
            )
            value = result.get("result", {}).get("value")
            if value is not None:
                return value
            time.sleep(0.2)
        return None

    def screenshot(self, selector: str, path: Path) -> Path:
        """Save a PNG of the element ``selector`` (with a margin) to ``path``."""
        box = self.send(
            "Runtime.evaluate",
            {
                "expression": f"(() => {{ const r = document.querySelector({selector!r})"
                ".getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY,"
                " r.width, r.height]; })()",
                "returnByValue": True,
            },
        )["result"]["value"]
        left, top, width, height = box
        clip = {"x": max(left - 16, 0), "y": max(top - 16, 0), "scale": 1}
        clip |= {"width": width + 32, "height": height + 32}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "clip": clip, "captureBeyondViewport": True},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + PATIENCE
        while b"\0" not in self._buffer:
            ready, _, _ = select.select(
                [self._replies], [], [], max(deadline - time.monotonic(), 0)
            )
            chunk = os.read(self._replies, 1 << 16) if ready else b""
            if not chunk:
                raise RuntimeError("Chromium stopped answering on its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        parsed: dict[str, Any] = json.loads(message)
        return parsed

    def _note(self, event: dict[str, Any]) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            text = " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
            self.errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            self.errors.append(f"uncaught: {text}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"{entry['source']}: {entry['text']} {entry.get('url', '')}".strip())


@contextmanager
def offline_browser(binary: str, profile: Path) -> Iterator[Browser]:
    """Start a fresh offline Chromium (its own profile directory); quit it afterwards."""
    browser = Browser(binary, profile)
    try:
        yield browser
    finally:
        browser.close()

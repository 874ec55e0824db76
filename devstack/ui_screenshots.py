"""Screenshots of the Dagster UI for the README's tour, taken with headless Chromium against a
running ``./cdp dev`` (after a ``./cdp run``), so they can be refreshed after a change:

    ./cdp dev &                                   # wait until it serves http://127.0.0.1:3000
    .venv/bin/python -m devstack.ui_screenshots   # writes docs/ui/*.png

Needs Chromium (Debian: ``apt-get install chromium``; ``--chromium`` or ``CHROMIUM`` for another
binary). Each page gets ``--wait`` seconds to load; raise it on a slow machine if a picture shows
a spinner. Dagster's first-visit pop-up is dismissed ("Skip") before each picture.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from spark_jobs.settings import REPO_ROOT

# name -> (page, the text of a button to click there first, if any)
PAGES = {
    "lineage": ("/locations/devstack.definitions/asset-groups/silver", None),
    "asset": ("/assets/silver/identity_map", None),
    "chart": ("/assets/silver/identity_map", "[Show Markdown]"),
    "run": ("/runs/{run_id}", None),
    "overview": ("/overview/activity/timeline", None),
}
# Without the background-networking flags Chromium keeps calling Google's hosts, which a closed
# network refuses; a new profile each time, so nothing of an earlier visit changes the picture.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def newest_run_id(url: str, job: str) -> str:
    """The newest run of ``job``, asked of the UI's own GraphQL endpoint."""
    query = {
        "query": "query($job: String!) { runsOrError(filter: {pipelineName: $job}, limit: 1) "
        "{ ... on Runs { results { runId status } } } }",
        "variables": {"job": job},
    }
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps(query).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        runs = json.load(response)["data"]["runsOrError"]["results"]
    if not runs:
        raise SystemExit(f"no run of {job} in the UI at {url}: run ./cdp run first")
    return runs[0]["runId"]


class Browser:
    """Headless Chromium driven over the DevTools protocol (websockets, already a dependency of
    Dagster's webserver): open a page, dismiss Dagster's first-visit pop-up, take a picture."""

    def __init__(self, chromium: str, size: tuple[int, int]):
        self.profile = tempfile.TemporaryDirectory()
        self.process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile.name}", "--remote-debugging-port=0",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        endpoint = None
        for line in self.process.stderr:
            if line.startswith("DevTools listening on "):
                endpoint = line.split()[-1]
                break
        if endpoint is None:
            raise SystemExit(f"{chromium} did not start its DevTools endpoint")
        port = endpoint.split(":")[2].split("/")[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page = next(t for t in json.load(response) if t["type"] == "page")
        from websockets.sync.client import connect

        self.stack = ExitStack()
        self.socket = self.stack.enter_context(connect(page["webSocketDebuggerUrl"], max_size=None))
        self.next_id = 0
        self.call(
            "Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False
        )

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def click_text(self, text: str) -> bool:
        """Click the first button or link whose text is ``text``; whether there was one."""
        script = (
            "(() => { const e = [...document.querySelectorAll('button, a')]"
            f".find(e => e.innerText.trim() === {json.dumps(text)}); if (e) e.click(); return !!e; }})()"
        )
        return bool(self.call("Runtime.evaluate", expression=script, returnByValue=True)["result"].get("value"))

    def picture(self, url: str, output: Path, wait_s: float, click: str | None = None) -> None:
        self.call("Page.navigate", url=url)
        time.sleep(wait_s)
        self.click_text("Skip")  # the community pop-up of a first visit
        if click and not self.click_text(click):
            print(f"warning: nothing called {click!r} on {url}", file=sys.stderr)
        time.sleep(1.5)
        data = self.call("Page.captureScreenshot", format="png")["data"]
        output.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        self.stack.close()
        self.process.terminate()
        self.process.wait(timeout=30)
        self.profile.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3000", help="the running ./cdp dev")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "ui", help="folder of the PNGs")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium") or "chromium")
    parser.add_argument("--size", default="1440,1000", help="page size in pixels (default %(default)s)")
    parser.add_argument("--wait", type=float, default=6, help="seconds to let a page load (default %(default)s)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    run_id = newest_run_id(args.url, "cdp_main")
    width, height = map(int, args.size.split(","))
    browser = Browser(args.chromium, (width, height))
    try:
        for name, (path, click) in PAGES.items():
            output = args.out / f"{name}.png"
            browser.picture(args.url + path.format(run_id=run_id), output, args.wait, click)
            print(output, file=sys.stderr)
    finally:
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

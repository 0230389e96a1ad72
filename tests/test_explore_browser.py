"""sample.py task=explore in a real headless browser (Debian's chromium and chromium-driver, driven by
Selenium): the user's command prints a URL; on the page, a seed and ψ shown are sample.py's PNG, byte for
byte, and the style-mixing panel shows the grid asked for. Without chromium the test skips visibly; under
CI=true (which installs it, .ci/run) it fails instead."""

from __future__ import annotations

import base64
import io
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import data_guard
import pytest
from conftest import REPO, run_task, user_env
from PIL import Image

BROWSER, DRIVER = "chromium", "chromedriver"
URL_LINE = re.compile(r"explorer at (http://127\.0\.0\.1:\d+/)")
READ_IMAGE = """
const [id, done] = arguments;
fetch(document.getElementById(id).src).then((r) => r.arrayBuffer()).then((buffer) => {
  let text = "";
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  done(btoa(text));
});
"""


def require_browser() -> tuple[str, str]:
    """The paths of chromium and its driver; else skip, or fail under CI."""
    found = shutil.which(BROWSER), shutil.which(DRIVER)
    selenium = __import__("importlib").util.find_spec("selenium") is not None
    if all(found) and selenium:
        return found
    reason = "the headless-browser test needs Debian's chromium and chromium-driver and selenium"
    if data_guard.on_ci():
        pytest.fail(f"{reason}: CI=true needs them (.ci/run installs them)", pytrace=False)
    pytest.skip(reason)


def start_explorer(snapshot: Path, cwd: Path) -> tuple[subprocess.Popen, str, list[str]]:
    """`sample.py task=explore` as a user runs it, and the URL it prints."""
    proc = subprocess.Popen([sys.executable, str(REPO / "sample.py"), "task=explore", f"snapshot={snapshot}",
                             "task.port=0", "batch_size=4", f"outputs_root={cwd / 'outputs'}"], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=user_env())
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = URL_LINE.search(line)
        if found:
            return proc, found.group(1), lines
    proc.kill()
    raise AssertionError("sample.py task=explore printed no URL:\n" + "".join(lines))


def browser(paths: tuple[str, str]):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1100,1400"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(paths[1]), options=options)


def wait_for(driver, script: str, timeout: float = 30.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))


def shown(driver, image_id: str, *parts: str) -> bytes:
    """The bytes the page shows in <img id=image_id> once it shows the request with every `part`."""
    condition = " && ".join(f"q.includes({part!r})" for part in parts)
    wait_for(driver, f"const q = document.getElementById({image_id!r}).dataset.query || ''; "
                     f"return {condition};")
    driver.set_script_timeout(30)
    return base64.b64decode(driver.execute_async_script(READ_IMAGE, image_id))


@pytest.mark.slow
def test_the_page_shows_sample_pys_png_and_the_mixing_grid(random_snapshots, tmp_path):
    paths = require_browser()
    snapshot = random_snapshots("stylegan")
    proc, url, _ = start_explorer(snapshot, tmp_path)
    try:
        (expected,) = run_task(snapshot, tmp_path / "sample", "seeds=[7]", "truncation_psi=0.3",
                               "batch_size=4")
        driver = browser(paths)
        try:
            driver.get(url)
            wait_for(driver, "return document.body.dataset.ready === 'true';")
            seed = driver.find_element("id", "seed")
            seed.clear()
            seed.send_keys("7")
            driver.execute_script("const psi = document.getElementById('psi'); psi.value = '0.3'; "
                                  "psi.dispatchEvent(new Event('input'));")
            driver.find_element("id", "show").click()
            assert shown(driver, "face", "seed=7&", "psi=0.3&") == expected.read_bytes()
            save = driver.find_element("id", "save")
            assert save.get_attribute("download") == "example-7-psi0.3.png"
            assert save.get_attribute("href") == driver.find_element("id", "face").get_attribute("src")
            assert driver.find_element("id", "score").text.startswith("D score ")

            for key, value in (("mix-rows", "1,2"), ("mix-columns", "3,4,5")):
                box = driver.find_element("id", key)
                box.clear()
                box.send_keys(value)
            driver.find_element("id", "mix-show").click()
            grid = Image.open(io.BytesIO(shown(driver, "mix", "rows=1%2C2&", "columns=3%2C4%2C5&")))
            assert grid.size == (4 * 16, 3 * 16)
            assert driver.find_element("id", "status").text == ""

            # A slider dragged through nine values: the page asks for the first and the last only, and every
            # image ends on the last.
            faces_asked = ("return performance.getEntriesByType('resource')"
                           ".filter((e) => e.name.includes('face.png')).length;")
            before = driver.execute_script(faces_asked)
            driver.execute_script("const psi = document.getElementById('psi'); for (let i = 0; i < 9; i++) { "
                                  "psi.value = (0.40 + i / 100).toFixed(2); "
                                  "psi.dispatchEvent(new Event('input')); }")
            for image_id in ("face", "mix", "interp"):
                shown(driver, image_id, "psi=0.48&")
            assert driver.execute_script(faces_asked) - before == 2

            driver.find_element("id", "new-face").click()
            wait_for(driver, "return !document.getElementById('face').dataset.query.includes('seed=7&');")
            assert 0 <= int(driver.find_element("id", "seed").get_attribute("value")) < 2**32
            driver.save_screenshot(str(tmp_path / "explore.png"))
            print(f"screenshot: {tmp_path / 'explore.png'}")
        finally:
            driver.quit()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "explorer stopped" in out, out

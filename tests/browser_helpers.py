"""Driving a web page in a real browser for tests: a local app in a subprocess, headless Debian Chromium through
selenium and chromedriver, and small page helpers with bounded waits. Nothing here reaches beyond 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import free_port
from PIL import Image

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)
CHROMEDRIVER = shutil.which("chromedriver")
# Bounds of every wait: an app's start (imports of torch, transformers and gradio on 2 busy cores), and one action.
START_TIMEOUT = 240
ACTION_TIMEOUT = 60
ARTIFACTS = Path(__file__).resolve().parents[1] / "outputs" / "test-artifacts"


# ------------------------------------------------------------------------------------------------ the app
class App:
    """`python app.py --port P --host 127.0.0.1 [--model ...]` in a process where `import hf_vqvae` fails."""

    def __init__(self, app_file: Path, cwd: Path, log: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        argv = [str(app_file), "--port", str(self.port), "--host", "127.0.0.1", *args]
        code = (
            "import runpy, sys\n"
            "sys.modules['hf_vqvae'] = None  # as on a Space: only the requirements are installed\n"
            f"sys.argv = {argv!r}\n"
            f"runpy.run_path({str(app_file)!r}, run_name='__main__')\n"
        )
        self.log = log
        self._log_file = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=cwd, env=env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def wait_until_up(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the app exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise AssertionError(f"the app did not answer within {START_TIMEOUT} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self._log_file.close()


@contextlib.contextmanager
def torch_threads(count: int):
    """This process at `count` torch threads: an app's outputs are compared with computations here at the thread
    count the app runs with (`app_env`), so that both run the same float operations in the same order."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def app_env(logs: Path, hf_home: Path, **extra: str) -> dict[str, str]:
    """The environment of an app process: offline, one thread (so that its outputs can be compared bitwise with the
    test's own computation at one thread), its Hub cache and gradio files under the test's folders."""
    env = {
        **os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"), "HF_MODULES_CACHE": str(hf_home / "modules"),
        "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(logs / "gradio"), **extra,
    }  # fmt: skip
    env.pop("HF_VQVAE_MODEL", None)
    return env


@contextlib.contextmanager
def running(*apps: App):
    """Waits until every app answers (they start side by side), yields them, and stops them all."""
    try:
        deadline = time.monotonic() + START_TIMEOUT
        for app in apps:
            app.wait_until_up(deadline)
        yield apps
    finally:
        for app in apps:
            app.stop()


# -------------------------------------------------------------------------------------------- the browser
def headless_chromium(profile: Path):
    """Headless Chromium with a fresh profile, driven through chromedriver (never selenium-manager, which would
    download one). Every host name but loopback fails to resolve: nothing of a page may come from elsewhere."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1400,1800",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(ACTION_TIMEOUT)
    driver.set_script_timeout(ACTION_TIMEOUT)
    return driver


@contextlib.contextmanager
def browser_session(profile: Path):
    driver = headless_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()


# ------------------------------------------------------------------------------------------- page helpers
def wait_for(driver, condition, what: str, timeout: float = ACTION_TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: condition(d), message=f"waiting for {what}"
    )


def css(driver, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def open_page(driver, url: str, field: str = "upload") -> None:
    driver.get(url)
    wait_for(driver, lambda d: css(d, f"#{field} input[type=file]"), "the upload field")


def upload(driver, path: Path, field: str = "upload", preview: str = "img") -> None:
    css(driver, f"#{field} input[type=file]")[0].send_keys(str(path))
    # Uploaded: the preview shows it, or the page says why it did not take it.
    wait_for(driver, lambda d: css(d, f"#{field} {preview}") or toasts(d), f"the upload of {path.name}")


def fetch(url: str) -> bytes:
    assert url.startswith("http://127.0.0.1:"), url
    with urllib.request.urlopen(url, timeout=ACTION_TIMEOUT) as response:
        return response.read()


def toasts(driver) -> list[str]:
    return [element.text for element in css(driver, "[data-testid='toast-body'], .toast-body") if element.text]


def texts(driver, selector: str) -> list[str]:
    """The texts of the elements `selector` finds, skipping any that the page replaces while they are read (a
    progress bar redraws many times a second)."""
    from selenium.common.exceptions import StaleElementReferenceException

    found = []
    for element in css(driver, selector):
        with contextlib.suppress(StaleElementReferenceException):
            if element.text:
                found.append(element.text)
    return found


def text_of(driver, element_id: str) -> str:
    elements = css(driver, f"#{element_id}")
    return elements[0].text.strip() if elements else ""


def image_at(url: str) -> Image.Image:
    return Image.open(io.BytesIO(fetch(url))).convert("RGB")


def images_in(driver, selector: str) -> list[Image.Image]:
    return [image_at(element.get_attribute("src")) for element in css(driver, selector)]


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, ARTIFACTS / path.name)
    return path

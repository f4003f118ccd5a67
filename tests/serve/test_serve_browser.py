"""``srzoo serve`` in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium; nothing downloads a browser) goes
through upload -> progress -> before/after slider -> download, and the files it
downloads equal ``srzoo.upscale()`` of the inputs. Also: keyboard reachability,
no sideways scrolling at phone width, screenshots (kept in docs/ when
SERVE_SCREENSHOTS=DIR is set: docs/serve-desktop.png, docs/serve-phone.png).

Skipped when chromium or chromedriver is missing, unless
SERVE_BROWSER_REQUIRED=1 (CI sets it after installing them)."""

from __future__ import annotations

import os
import shutil
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import srzoo

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _need_browser() -> None:
    if CHROMIUM and DRIVER:
        return
    why = "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
    if os.environ.get("SERVE_BROWSER_REQUIRED") == "1":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture
def browser(tmp_path: Path):
    _need_browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager never fetches anything
    dl = tmp_path / "downloads"
    dl.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,1000", "--force-device-scale-factor=1", "--no-first-run",
              "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"download.default_directory": str(dl),
                                           "download.prompt_for_download": False})
    service = webdriver.ChromeService(executable_path=DRIVER)
    driver = webdriver.Chrome(options=opts, service=service)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(dl)})
    driver.download_dir = dl
    yield driver
    driver.quit()


def wait_file(folder: Path, name: str, timeout: float = 30) -> Path:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        p = folder / name
        if p.exists() and not list(folder.glob("*.crdownload")) and p.stat().st_size > 0:
            return p
        time.sleep(0.1)
    raise AssertionError(f"{name} not downloaded; have {sorted(x.name for x in folder.iterdir())}")


@pytest.mark.slow
def test_upload_progress_slider_download_in_chromium(browser, start, shared_dir, tmp_path):
    r = start()
    inputs = [shared_dir / "datasets" / "Set5" / n for n in ("butterfly.png", "bird.png")]
    want = {p.stem: srzoo.upscale(str(p), "default", 2) for p in inputs}
    d = browser
    d.get(r.url + "/")
    wait = WebDriverWait(d, 60, poll_frequency=0.05)
    wait.until(lambda d: d.execute_script("return document.getElementById('model').value") == "default")
    assert "built-in" in d.find_element(By.ID, "model-info").text
    assert "worker" in d.find_element(By.ID, "server").text

    d.find_element(By.ID, "files").send_keys("\n".join(str(p) for p in inputs))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs li")) == 2)
    d.find_element(By.ID, "go").click()
    seen: set[str] = set()
    values: list[float] = []

    def all_done(d) -> bool:  # noqa: ANN001
        st = d.execute_script("return [...document.querySelectorAll('#jobs li')].map("
                              "li => [li.dataset.state, li.querySelector('progress').value])")
        seen.update(s for s, _ in st)
        values.extend(v for _, v in st)
        return all(s == "done" for s, _ in st)

    wait.until(all_done)
    assert {"done"} < seen or values, seen  # it moved through states before done
    assert max(values) == 100 and min(values) < 100
    items = d.find_elements(By.CSS_SELECTOR, "#jobs li")
    for li in items:
        meta = li.find_element(By.CSS_SELECTOR, ".meta").text
        state = li.find_element(By.CSS_SELECTOR, ".state").text
        assert " s" in meta and "default" in meta and state.startswith("Done in ") and " on " in state

    # before/after at 100 %: the result's own pixel size, the slider moves the cut
    bfly = next(li for li in items if li.find_element(By.CSS_SELECTOR, ".name").text == "butterfly.png")
    bfly.find_element(By.CSS_SELECTOR, ".show").send_keys(Keys.ENTER)  # the keyboard opens it
    wait.until(lambda d: d.find_element(By.ID, "compare-name").text == "butterfly.png")
    wait.until(lambda d: d.find_element(By.ID, "after").get_attribute("naturalWidth") == "512")
    box = "const b = document.getElementById('after').getBoundingClientRect();" \
          "return [b.width, b.height, window.devicePixelRatio]"
    wait.until(lambda d: d.execute_script(box) == [512, 512, 1])  # one result pixel, one CSS pixel
    slider = d.find_element(By.ID, "slider")
    slider.send_keys(Keys.HOME)
    assert d.execute_script("return document.getElementById('after').style.clipPath") in (
        "inset(0px 0px 0px 0%)", "inset(0% 0px 0px)", "inset(0px 0px 0px 0px)", "inset(0px)")
    for _ in range(30):
        slider.send_keys(Keys.ARROW_RIGHT)
    assert d.execute_script("return document.getElementById('after').style.clipPath") == "inset(0px 0px 0px 30%)"
    assert d.execute_script("return document.getElementById('divider').style.left") == "30%"
    slider.send_keys(Keys.END)
    assert d.find_element(By.ID, "slider").get_attribute("aria-valuetext") == "100 % before, 0 % after"
    slider.send_keys(Keys.HOME)
    for _ in range(5):
        slider.send_keys(Keys.PAGE_UP)

    # download each, then all as a zip: the files equal srzoo.upscale() of the inputs
    for li in items:
        a = li.find_element(By.CSS_SELECTOR, ".dl")
        name = a.get_attribute("download")
        a.click()
        got = cv2.imread(str(wait_file(d.download_dir, name)), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(got, want[name.split("_default_")[0]]), name
    d.find_element(By.ID, "zip").click()
    z = zipfile.ZipFile(wait_file(d.download_dir, "srzoo-results.zip"))
    assert sorted(z.namelist()) == ["bird_default_x2.png", "butterfly_default_x2.png"]
    for n in z.namelist():
        img = cv2.imdecode(np.frombuffer(z.read(n), np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(img, want[n.split("_default_")[0]])

    # keyboard: every control is reached with Tab, in order
    d.execute_script("window.scrollTo(0, 0)")
    d.find_element(By.TAG_NAME, "h1").click()  # Tab starts from the top of the page
    d.switch_to.active_element.send_keys(Keys.TAB)
    order = []
    for _ in range(25):
        el = d.switch_to.active_element
        order.append(el.get_attribute("id") or el.get_attribute("class") or el.tag_name)
        el.send_keys(Keys.TAB)
    # (Upscale is disabled now: nothing is left to upscale; a disabled button takes no focus)
    for want_id in ("drop", "model", "scale", "width", "height", "zip", "clear", "show", "button dl",
                    "rm", "viewport", "slider"):
        assert want_id in order, order
    assert order.index("drop") < order.index("model") < order.index("zip") < order.index("slider")

    shots = Path(os.environ.get("SERVE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    d.execute_script("document.activeElement.blur(); window.scrollTo(0, 0);"
                     "document.getElementById('slider').value = 50;"
                     "document.getElementById('slider').dispatchEvent(new Event('input'))")
    d.set_window_size(1280, 1480)
    time.sleep(0.3)
    d.save_screenshot(str(shots / "serve-desktop.png"))
    # a phone: nothing wider than the screen (the picture scrolls inside its own box)
    d.set_window_size(390, 1700)
    time.sleep(0.3)
    assert d.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    font = d.execute_script("return parseFloat(getComputedStyle(document.body).fontSize)")
    assert font >= 16
    tap = d.execute_script("return document.getElementById('go').getBoundingClientRect().height")
    assert tap >= 44  # touch targets
    d.save_screenshot(str(shots / "serve-phone.png"))
    for n in ("serve-desktop.png", "serve-phone.png"):
        img = cv2.imread(str(shots / n))
        assert img is not None and img.std() > 10

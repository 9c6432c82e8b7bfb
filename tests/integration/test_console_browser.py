"""The web console in a real headless Chromium (Debian's chromium and chromium-driver, driven by
selenium) against the running app: sign in, upload, wait, read the transcript, click a word and
check the player's time, download SRT; at 1280×800 and on a phone-sized screen.

Screenshots go to tests/artifacts/console/ (git-ignored). Selenium blocks, and this event loop
runs the pipeline's ingest and notify workers, so the browser is driven from a thread.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from bench.diarization import pyannote_sample
from functions.common.apikeys import create_key
from functions.common.bootstrap import bootstrap, s3_client_args
from tests.datasets_public import chatterbot
from tests.integration.kashf_client import Kashf
from tests.integration.pipeline import REPO, Pipeline
from tests.speech import espeak_wav

pytestmark = [pytest.mark.e2e, pytest.mark.asr, pytest.mark.browser]

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = REPO / "tests" / "artifacts" / "console"
DESKTOP, PHONE = (1280, 800), (390, 844)
LABELS = ["money", "science", "sports"]  # three chatterbot categories, ~80 English texts
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--no-first-run", "--mute-audio", "--lang=en-US",
)  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.fail(
            "chromium and chromium-driver are missing: `make install` installs them (Debian packages)"
        )
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    (ARTIFACTS / "downloads").mkdir(parents=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(ARTIFACTS / "downloads"),
                                              "download.prompt_for_download": False})  # fmt: skip
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def viewport(driver: WebDriver, size: tuple[int, int]) -> None:
    width, height = size
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


def shot(driver: WebDriver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def wait(driver: WebDriver, seconds: float = 30) -> WebDriverWait[WebDriver]:
    return WebDriverWait(driver, seconds)


def fits_the_screen(driver: WebDriver) -> bool:
    return bool(driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth"))


def every_control_is_labelled(driver: WebDriver) -> list[str]:
    return list(driver.execute_script("""
        return [...document.querySelectorAll('input:not([type=hidden]), select, button, audio')]
          .filter((e) => !(e.labels?.length || e.getAttribute('aria-label') || e.textContent.trim()))
          .map((e) => e.outerHTML.slice(0, 80));"""))  # fmt: skip


def sign_in(driver: WebDriver, base: str, key: str) -> None:
    viewport(driver, DESKTOP)
    driver.get(f"{base}/ui/")
    field = wait(driver).until(ready.element_to_be_clickable((By.ID, "key")))
    field.send_keys("shv_not-a-key", Keys.ENTER)
    refused = wait(driver).until(ready.visibility_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
    assert "not valid" in refused.text
    shot(driver, "01-sign-in-refused")
    field.clear()
    field.send_keys(key, Keys.ENTER)
    wait(driver).until(ready.visibility_of_element_located((By.ID, "upload-title")))


def upload(driver: WebDriver, audio: Path) -> str:
    """Drop-in through the file input (what a drop hands over too); the new job's id."""
    Select(driver.find_element(By.ID, "language")).select_by_value("en")
    driver.find_element(By.ID, "speakers").click()
    driver.find_element(By.ID, "files").send_keys(str(audio))
    link = wait(driver).until(ready.element_to_be_clickable((By.CSS_SELECTOR, ".uploads a")))
    bar = driver.find_element(By.CSS_SELECTOR, ".uploads progress")
    assert bar.get_attribute("value") == "1"  # the upload's bar ran to its end
    job_id = (link.get_attribute("href") or "").rsplit("/", 1)[-1]
    done = f"table.jobs tr[data-id='{job_id}'][data-status='COMPLETED']"
    wait(driver, 300).until(ready.presence_of_element_located((By.CSS_SELECTOR, done)))  # the live list
    assert fits_the_screen(driver) and every_control_is_labelled(driver) == []
    shot(driver, "02-jobs")
    link.click()
    return job_id


DROP = """
    const file = new File(["these are notes, not audio"], "dropped.txt", {type: "text/plain"});
    const data = new DataTransfer();
    data.items.add(file);
    const drop = new DragEvent("drop", {dataTransfer: data, bubbles: true});
    document.querySelector(".dropzone").dispatchEvent(drop);
"""


def drop_a_file(driver: WebDriver) -> None:
    """A file dropped on the zone is sent like a chosen one; the server's refusal is shown beside it."""
    driver.execute_script(DROP)
    refused = (By.CSS_SELECTOR, ".uploads li.failed [role=alert]")
    assert "at least 100 bytes" in wait(driver).until(ready.visibility_of_element_located(refused)).text


def player_time(driver: WebDriver) -> float:
    return float(driver.execute_script("return document.getElementById('player').currentTime"))


def click_a_word(driver: WebDriver) -> tuple[str, float]:
    words = wait(driver).until(
        ready.presence_of_all_elements_located((By.CSS_SELECTOR, ".transcript span.w"))
    )
    wait(driver).until(lambda d: d.execute_script("return document.getElementById('player').readyState >= 1"))
    word = words[len(words) // 2]
    start = float(word.get_attribute("data-start") or 0)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", word)
    word.click()
    wait(driver, 10).until(lambda d: start - 0.01 <= player_time(d) <= start + 3.0)
    current = wait(driver, 10).until(ready.presence_of_element_located((By.CSS_SELECTOR, "span.w.current")))
    assert float(current.get_attribute("data-start") or -1) >= start - 0.01  # the spoken word is lit
    driver.execute_script("document.getElementById('player').pause()")
    return word.text, start


def keyboard_seek(driver: WebDriver) -> None:
    """A segment's time button is reachable and works from the keyboard."""
    button = driver.find_elements(By.CSS_SELECTOR, ".segment button.time")[-1]
    start = float(button.find_element(By.XPATH, "./ancestor::article").get_attribute("data-start") or 0)
    driver.execute_script("arguments[0].focus()", button)
    button.send_keys(Keys.ENTER)
    wait(driver, 10).until(lambda d: start - 0.01 <= player_time(d) <= start + 3.0)
    driver.execute_script("document.getElementById('player').pause()")


def download_srt(driver: WebDriver) -> str:
    driver.find_element(By.CSS_SELECTOR, "button[data-format='.srt']").click()
    target = ARTIFACTS / "downloads" / "sample.srt"
    wait(driver, 20).until(lambda _: target.exists() and target.stat().st_size > 0)
    return target.read_text()


def script_errors(driver: WebDriver) -> list[str]:
    """Uncaught exceptions and refused resources (a CSP violation, an asset that did not load);
    not the API's own refusals that the flow provokes (a wrong key, a file too small)."""
    expected = "the server responded with a status of 4"
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and expected not in e["message"]
    ]


def console_flow(driver: WebDriver, base: str, key: str, audio: Path) -> dict[str, Any]:
    sign_in(driver, base, key)
    drop_a_file(driver)
    job_id = upload(driver, audio)
    wait(driver).until(ready.presence_of_element_located((By.CSS_SELECTOR, ".transcript .speaker")))
    word, start = click_a_word(driver)
    shot(driver, "03-job-desktop")
    keyboard_seek(driver)
    srt = download_srt(driver)
    assert fits_the_screen(driver) and every_control_is_labelled(driver) == []
    viewport(driver, PHONE)
    driver.refresh()
    wait(driver).until(ready.presence_of_element_located((By.CSS_SELECTOR, ".transcript span.w")))
    assert fits_the_screen(driver)
    shot(driver, "04-job-phone")
    viewport(driver, DESKTOP)
    driver.get(f"{base}/ui/#/webhooks")
    wait(driver).until(ready.visibility_of_element_located((By.ID, "attempts-title")))
    wait(driver).until(ready.presence_of_element_located((By.CSS_SELECTOR, "nav.pager button")))
    assert fits_the_screen(driver) and every_control_is_labelled(driver) == []
    shot(driver, "05-webhooks")
    return {"job_id": job_id, "word": word, "start": start, "srt": srt, "errors": script_errors(driver)}


async def test_sign_in_upload_read_seek_and_download_subtitles(
    browser: WebDriver, pipeline: Pipeline
) -> None:
    audio = ARTIFACTS / "sample.wav"
    shutil.copyfile(pyannote_sample()[0], audio)  # 30 s, two speakers
    seen = await asyncio.to_thread(console_flow, browser, pipeline.api_url, pipeline.api_key, audio)
    assert seen["errors"] == []
    assert seen["word"].strip() and seen["start"] > 0
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=pipeline.auth()) as api:
        transcript = (await api.get(f"/ui/api/jobs/{seen['job_id']}/transcript")).json()
        served = (await api.get(f"/ui/api/jobs/{seen['job_id']}/transcript", params={"format": "srt"})).text
    assert len({s["speaker"] for s in transcript["segments"] if s["speaker"]}) >= 2  # speakers labelled
    assert seen["srt"] == served  # the browser saves the server's subtitles, as the command line does
    (ARTIFACTS / "transcript.json").write_text(json.dumps(transcript, indent=1))


def signed_in(driver: WebDriver, base: str, key: str, page: str) -> None:
    """The console with the key already in the tab's session storage, at ``page``."""
    viewport(driver, DESKTOP)
    driver.get(f"{base}/ui/")
    driver.execute_script("sessionStorage.setItem('shenava.apiKey', arguments[0])", key)
    driver.get(f"{base}/ui/{page}")
    driver.refresh()


def datasets_flow(driver: WebDriver, base: str, key: str, slug: str) -> dict[str, Any]:
    signed_in(driver, base, key, "#/datasets")
    wait(driver).until(
        ready.element_to_be_clickable((By.CSS_SELECTOR, f"a[href='#/dataset/{slug}']"))
    ).click()
    bars = wait(driver).until(ready.presence_of_all_elements_located((By.CSS_SELECTOR, ".chart meter")))
    rows = driver.find_elements(By.CSS_SELECTOR, "table tbody tr")
    table = {r.find_element(By.TAG_NAME, "th").text: [td.text for td in r.find_elements(By.TAG_NAME, "td")]
             for r in rows}  # fmt: skip
    reports = wait(driver).until(
        ready.presence_of_all_elements_located((By.CSS_SELECTOR, ".lists ul.items li"))
    )
    seen = {"bars": len(bars), "table": table, "first_report": reports[0].text}
    assert fits_the_screen(driver) and every_control_is_labelled(driver) == []
    shot(driver, "05-dataset-desktop")
    viewport(driver, PHONE)
    assert fits_the_screen(driver)
    shot(driver, "06-dataset-phone")
    return {**seen, "errors": script_errors(driver)}


async def test_a_trained_dataset_shows_its_quality_per_tag_and_its_reports(
    browser: WebDriver, pipeline: Pipeline
) -> None:
    texts = [(text, label) for text, label in chatterbot("english", 20) if label in LABELS]
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=600) as client:
        kashf = Kashf(pipeline, client)
        slug = await kashf.dataset("text", "console")
        tags = await kashf.tags(slug, LABELS)
        reports = [{"content": text, "tag_id": tags[other], "positive": other == label}
                   for text, label in texts for other in LABELS]  # fmt: skip
        await kashf.call("/api/report_text_tags/", reports)
        info = await kashf.train(slug)
    seen = await asyncio.to_thread(datasets_flow, browser, pipeline.api_url, pipeline.api_key, slug)
    assert seen["errors"] == []
    rated = [tag for tag in info["tags"] if tag["evaluation"]]
    assert rated and seen["bars"] == 3 * len(rated)  # precision, recall and F1 of each rated tag
    for tag in rated:  # the table shows the numbers the chart draws
        assert float(seen["table"][tag["title"]][-1]) == tag["evaluation"]["f1"]
    shown = seen["first_report"]  # a reported text, as the browser lays it out (newlines as spaces)
    assert any(shown.startswith(" ".join(text.split())[:20]) for text, _ in texts), shown


def batch_flow(driver: WebDriver, base: str, key: str, batch: str) -> dict[str, Any]:
    signed_in(driver, base, key, "#/batches")
    wait(driver).until(ready.element_to_be_clickable((By.CSS_SELECTOR, f"a[href='#/batch/{batch}']"))).click()
    done = "//p[@class='big'][text()='100% done']"

    def both_done(d: WebDriver) -> bool:  # the page refreshes itself until every file is done
        rows = d.find_elements(By.CSS_SELECTOR, "tbody tr[data-id]")
        return len(rows) == 2 and bool(d.find_elements(By.XPATH, done))

    wait(driver, 300).until(both_done)
    rows = driver.find_elements(By.CSS_SELECTOR, "tbody tr[data-id]")
    states = [
        (r.find_elements(By.TAG_NAME, "td")[1].text, r.find_elements(By.TAG_NAME, "td")[3].text) for r in rows
    ]
    driver.find_element(By.XPATH, "//button[text()='Stop']").click()
    answer = wait(driver).until(ready.visibility_of_element_located((By.CSS_SELECTOR, "main .message")))
    assert fits_the_screen(driver) and every_control_is_labelled(driver) == []
    shot(driver, "07-batch")
    return {"states": states, "answer": answer.text, "errors": script_errors(driver)}


async def test_a_dropped_batch_is_followed_to_the_end(
    browser: WebDriver, pipeline: Pipeline, tmp_path: Path
) -> None:
    settings = pipeline.settings
    async with bootstrap(settings) as deps:
        key = await create_key(deps.state, settings.drop_tenant)  # drop-folder files are this tenant's
    async with get_session().create_client("s3", **s3_client_args(settings)) as s3:
        for name in ("one.wav", "two.wav"):
            audio = espeak_wav(f"This is file {name[:3]} of the console batch.", "en-us", tmp_path / name)
            await s3.put_object(
                Bucket=settings.media_bucket, Key=f"incoming/console-lote/{name}", Body=audio.read_bytes()
            )
    seen = await asyncio.to_thread(batch_flow, browser, pipeline.api_url, key, "console-lote")
    assert seen["errors"] == []
    assert seen["states"] == [("FINISHED", "Completed")] * 2  # TRD's control state and the job's
    assert "Stop sent" in seen["answer"]  # TRD's batch stop answered (nothing left to pause)

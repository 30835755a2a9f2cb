"""The dashboard in a real browser: Debian's chromium driven by chromium-driver through
Selenium, against a real `paas serve` and the real engine (Redis stand-in). Log in, pick the
production tab, search the catalog, provision, watch Provisioning become Ready without a
reload, reveal the DSN, remove with the confirmation. Screenshots are kept in
test-artifacts/ (git-ignored)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis

from tests.support.api_server import Server
from tests.support.engine import docker_required, profile_id, sweep
from tests.support.paths import ROOT

ARTIFACTS = ROOT / "test-artifacts"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
STEP_DEADLINE_SECONDS = 90


@pytest.fixture
def browser():
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        message = "chromium and chromium-driver are needed (apt-get install chromium chromium-driver)"
        if docker_required():
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def click(wait, locator) -> None:
    """Click once the element is there; the page re-renders lists as answers arrive, so an
    element found a moment ago may have been replaced: find it again then."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support import expected_conditions as EC

    def clicked(driver) -> bool:
        try:
            EC.element_to_be_clickable(locator)(driver).click()
            return True
        except (StaleElementReferenceException, AttributeError):
            return False

    wait.until(clicked)


def test_add_ready_reveal_remove_in_the_dashboard(browser, docker_client, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    home = tmp_path / "home"
    server = Server(home).start()
    wait = WebDriverWait(browser, STEP_DEADLINE_SECONDS, poll_frequency=0.05)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        member = server.token("bob", "member")
        admin = server.token("alice", "admin")

        # a wrong token is refused on the page
        browser.get(server.url + "/")
        browser.find_element(By.ID, "token").send_keys("paas_wrong")
        browser.find_element(By.ID, "login-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "login-error"), "unknown, expired or revoked"))

        browser.find_element(By.ID, "token").clear()
        browser.find_element(By.ID, "token").send_keys(admin)
        browser.find_element(By.ID, "login-button").click()
        wait.until(EC.visibility_of_element_located((By.ID, "app")))
        assert browser.find_element(By.ID, "who").text == "alice (admin)"
        browser.find_element(By.ID, "tab-production").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "scope-name"), "default / production"))

        browser.find_element(By.ID, "search").send_keys("redis")
        wait.until(lambda driver: driver.execute_script(  # the list shows the search's answer, not the full catalog
            "const items = [...document.querySelectorAll('#templates li')];"
            "return items.length > 0 && items.every((li) => li.textContent.toLowerCase().includes('redis'));"))
        click(wait, (By.ID, "template-redis-7"))
        browser.find_element(By.ID, "slug").send_keys("cache")
        browser.find_element(By.ID, "provision").click()
        status = (By.CSS_SELECTOR, "#service-cache [data-status]")
        wait.until(EC.presence_of_element_located(status))
        first_seen = browser.find_element(*status).text
        assert first_seen in ("Provisioning", "Ready")
        page_id = browser.execute_script("return window.performance.timeOrigin")
        wait.until(EC.text_to_be_present_in_element(status, "Ready"))
        assert browser.execute_script("return window.performance.timeOrigin") == page_id, "no reload happened"

        click(wait, (By.CSS_SELECTOR, "#service-cache [data-action=reveal]"))
        wait.until(EC.visibility_of_element_located((By.ID, "reveal")))
        dsn = browser.find_element(By.ID, "reveal-dsn").text
        assert browser.find_element(By.ID, "reveal-env-var").text == "CACHE_URL"
        assert dsn == server.paas("svc", "dsn", "cache", "--env", "production").stdout.strip()
        assert redis.Redis.from_url(dsn).ping()
        browser.save_screenshot(str(ARTIFACTS / "dashboard-revealed.png"))

        # remove: dismissing the confirmation keeps it, accepting removes it
        click(wait, (By.CSS_SELECTOR, "#service-cache [data-action=remove]"))
        wait.until(EC.alert_is_present()).dismiss()
        assert browser.find_element(*status).text == "Ready"
        click(wait, (By.CSS_SELECTOR, "#service-cache [data-action=remove]"))
        alert = wait.until(EC.alert_is_present())
        assert "volume (the data) is kept" in alert.text
        alert.accept()
        wait.until(EC.invisibility_of_element_located((By.ID, "service-cache")))
        wait.until(EC.visibility_of_element_located((By.ID, "no-services")))
        shown = server.paas("svc", "show", "cache", "--env", "production", "--json")
        assert '"status": "Removed"' in shown.stdout or '"status":"Removed"' in shown.stdout

        # a member sees no Reveal button
        browser.find_element(By.ID, "logout").click()
        wait.until(EC.visibility_of_element_located((By.ID, "login")))
        browser.find_element(By.ID, "token").send_keys(member)
        browser.find_element(By.ID, "login-button").click()
        wait.until(EC.text_to_be_present_in_element((By.ID, "who"), "bob (member)"))
        browser.find_element(By.ID, "search").send_keys("search")
        wait.until(EC.presence_of_element_located((By.ID, "template-meilisearch-1.10")))
        assert not browser.find_elements(By.CSS_SELECTOR, "[data-action=reveal]")
        browser.save_screenshot(str(ARTIFACTS / "dashboard-member.png"))
    finally:
        server.stop()
        profile = profile_id(home)
        if profile:
            sweep(docker_client, f"paas.profile={profile}")

"""The dashboard in a real browser: Debian's chromium driven by chromium-driver through
Selenium, against a real `paas serve` and the real engine (Redis stand-in). Log in, pick the
production tab, search the catalog, provision, watch Provisioning become Ready without a
reload, reveal the DSN, remove with the confirmation; then the dashboard as a teammate uses it
daily (keyboard only, a 400-px window, the server going away and back, a service's page, repair,
removed services, the audit view). Screenshots are kept in test-artifacts/ (git-ignored)."""

from __future__ import annotations

import json
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


# -- the dashboard used daily: keyboard only, a narrow window, a server that goes away, a
# service's own page (log, stats, backups, restore), repair, removed services, the audit view --


def press(browser, *keys) -> None:
    """Keys to whatever has the focus, as a keyboard does (no element is clicked or targeted)."""
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).send_keys(*keys).perform()


def tab_to(browser, element_id: str, limit: int = 150) -> None:
    """Press Tab until the element has the focus: it must be reachable by keyboard."""
    from selenium.webdriver.common.keys import Keys

    seen = []
    for _ in range(limit):
        active = browser.execute_script("return document.activeElement && document.activeElement.id")
        if active == element_id:
            return
        seen.append(active)
        press(browser, Keys.TAB)
    raise AssertionError(f"#{element_id} never got the focus with Tab; the focus went round {seen[:20]}...")


def no_sideways_scroll(browser) -> None:
    width, client = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width <= client, f"the page scrolls sideways: {width}px of content in {client}px"


def test_the_dashboard_used_daily(browser, docker_client, tmp_path):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    home = tmp_path / "home"
    server = Server(home).start()
    wait = WebDriverWait(browser, STEP_DEADLINE_SECONDS, poll_frequency=0.05)
    ARTIFACTS.mkdir(exist_ok=True)
    status = (By.CSS_SELECTOR, "#service-kb [data-status]")
    try:
        member = server.token("bob", "member")
        admin = server.token("alice", "admin")
        browser.get(server.url + "/")
        browser.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": server.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})

        # keyboard only: log in, search, choose a template, give a slug, provision
        tab_to(browser, "token")
        press(browser, admin, Keys.ENTER)
        wait.until(EC.text_to_be_present_in_element((By.ID, "who"), "alice (admin)"))
        tab_to(browser, "search")
        press(browser, "redis")
        wait.until(lambda driver: driver.execute_script(
            "const items = [...document.querySelectorAll('#templates li')];"
            "return items.length > 0 && items.every((li) => li.textContent.toLowerCase().includes('redis'));"))
        tab_to(browser, "template-redis-7")
        press(browser, Keys.ENTER)
        assert browser.execute_script("return document.activeElement.id") == "slug"
        assert browser.find_element(By.ID, "template-redis-7").get_attribute("aria-pressed") == "true"
        press(browser, "kb", Keys.ENTER)
        wait.until(EC.presence_of_element_located(status))
        wait.until(EC.text_to_be_present_in_element(status, "Ready"))

        # the API's hint reaches the page: the same slug again is refused with what to do
        tab_to(browser, "slug")
        press(browser, "kb", Keys.ENTER)
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#add-error .hint"), "paas svc show kb"))
        assert "already exists" in browser.find_element(By.ID, "add-error").text

        # a search that matches nothing says so
        search = browser.find_element(By.ID, "search")
        search.clear()
        search.send_keys("zzqx-nothing")
        wait.until(EC.visibility_of_element_located((By.ID, "no-templates")))
        assert 'No template matches "zzqx-nothing"' in browser.find_element(By.ID, "no-templates").text
        assert not browser.find_elements(By.CSS_SELECTOR, "#templates li")

        # the DSN: revealed, copied to the clipboard with one button
        dsn = server.paas("svc", "dsn", "kb").stdout.strip()
        click(wait, (By.CSS_SELECTOR, "#service-kb [data-action=reveal]"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "reveal-dsn"), dsn))
        click(wait, (By.ID, "copy-dsn"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "copy-status"), "Copied the connection string of kb (KB_URL)"))
        clipboard = browser.execute_async_script(
            "const done = arguments[0]; navigator.clipboard.readText().then(done, (e) => done('refused: ' + e));")
        assert clipboard == dsn
        client = redis.Redis.from_url(dsn)
        client.set("kept", "before-backup")

        # the variables of the environment, on the page
        click(wait, (By.ID, "show-variables"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "variables-rows"), "KB_URL"))
        assert dsn in browser.find_element(By.ID, "variables-rows").text

        # a 400-px window: nothing scrolls sideways (list, revealed DSN, variables)
        browser.set_window_size(400, 900)
        no_sideways_scroll(browser)

        # the service's own page: stats, the log's tail, backups
        click(wait, (By.CSS_SELECTOR, "#service-kb [data-action=details]"))
        wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-stat=Running]"), "yes"))
        wait.until(lambda driver: driver.find_element(By.ID, "detail-logs").text.strip() != "")
        assert "No log" not in browser.find_element(By.ID, "detail-logs").text
        assert browser.find_element(By.CSS_SELECTOR, "[data-stat=Memory]").text != "-"
        wait.until(EC.visibility_of_element_located((By.ID, "no-backups")))
        click(wait, (By.ID, "backup-now"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "detail-notice"), "Backup #1 of kb taken"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#backup-1 [data-action=restore]")))
        browser.find_element(By.ID, "schedule-keep").send_keys("3")
        click(wait, (By.ID, "schedule-save"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "schedule-text"), "Scheduled: daily, keep 3"))
        no_sideways_scroll(browser)
        browser.save_screenshot(str(ARTIFACTS / "dashboard-service-page-400px.png"))
        browser.set_window_size(1200, 900)

        # restore asks first: dismissed, nothing changes; accepted, the backup's data is back
        client.set("kept", "after-backup")
        click(wait, (By.CSS_SELECTOR, "#backup-1 [data-action=restore]"))
        alert = wait.until(EC.alert_is_present())
        assert "Replace ALL data of kb" in alert.text and "safety backup" in alert.text
        alert.dismiss()
        wait.until(EC.text_to_be_present_in_element((By.ID, "detail-notice"), "Not restored"))
        assert client.get("kept") == b"after-backup"
        click(wait, (By.CSS_SELECTOR, "#backup-1 [data-action=restore]"))
        wait.until(EC.alert_is_present()).accept()
        wait.until(EC.text_to_be_present_in_element((By.ID, "detail-notice"), "Restored kb from backup #1"))
        assert redis.Redis.from_url(dsn).get("kept") == b"before-backup"

        # a service whose container is gone offers Repair, and Repair brings it back
        shown = json.loads(server.paas("svc", "show", "kb", "--json").stdout)
        docker_client.containers.get(shown["container"]).remove(force=True, v=True)
        wait.until(EC.text_to_be_present_in_element(status, "Missing"))
        click(wait, (By.ID, "detail-repair"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "detail-notice"), "kb: "))
        wait.until(EC.text_to_be_present_in_element(status, "Ready"))
        assert redis.Redis.from_url(dsn).get("kept") == b"before-backup"

        # stop and start from the page
        click(wait, (By.ID, "detail-stop"))
        wait.until(EC.text_to_be_present_in_element(status, "Stopped"))
        click(wait, (By.ID, "detail-start"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "detail-notice"), "kb started"))
        wait.until(EC.text_to_be_present_in_element(status, "Ready"))
        click(wait, (By.ID, "detail-close"))

        # the server goes away: a banner, and no row stays green; it comes back: all as before
        server.stop()
        wait.until(EC.visibility_of_element_located((By.ID, "connection-lost")))
        wait.until(EC.text_to_be_present_in_element(status, "Unknown"))
        assert browser.find_element(By.ID, "services-error").text == ""
        server = Server(home, port=server.port).start()
        wait.until(EC.invisibility_of_element_located((By.ID, "connection-lost")))
        wait.until(EC.text_to_be_present_in_element(status, "Ready"))
        assert browser.find_element(By.ID, "services-error").text == ""

        # the project list follows the server's
        server.paas("project", "create", "shop")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "#project option[value=shop]")))

        # removed with its data kept: listed, and adding it again says it reattaches, and asks
        click(wait, (By.CSS_SELECTOR, "#service-kb [data-action=remove]"))
        wait.until(EC.alert_is_present()).accept()
        wait.until(EC.visibility_of_element_located((By.ID, "removed-kb")))
        click(wait, (By.CSS_SELECTOR, "#removed-kb [data-action=re-add]"))
        alert = wait.until(EC.alert_is_present())
        assert "REATTACHES that old data" in alert.text
        alert.dismiss()
        wait.until(EC.text_to_be_present_in_element((By.ID, "services-notice"), "was not added again"))
        assert not browser.find_elements(By.ID, "service-kb")
        search = browser.find_element(By.ID, "search")
        search.clear()
        search.send_keys("redis")
        click(wait, (By.ID, "template-redis-7"))
        browser.find_element(By.ID, "slug").clear()  # it kept the refused "kb" of the hint's step
        browser.find_element(By.ID, "slug").send_keys("kb", Keys.ENTER)
        alert = wait.until(EC.alert_is_present())
        assert "REATTACHES that old data" in alert.text
        alert.accept()
        wait.until(EC.text_to_be_present_in_element(status, "Ready"))
        assert redis.Redis.from_url(dsn).get("kept") == b"before-backup"

        # rotate the password from the service's page: asked first, then the old DSN stops working
        click(wait, (By.CSS_SELECTOR, "#service-kb [data-action=details]"))
        click(wait, (By.ID, "detail-rotate"))
        alert = wait.until(EC.alert_is_present())
        assert "new password" in alert.text
        alert.accept()
        wait.until(EC.text_to_be_present_in_element((By.ID, "detail-notice"), "kb has a new password"))
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis.from_url(dsn).ping()
        assert redis.Redis.from_url(server.paas("svc", "dsn", "kb").stdout.strip()).get("kept") == b"before-backup"

        # the audit view: an admin sees who did what through the API (in a 400-px window too),
        # and what the entries hold is text, never markup
        from paas_svc.state.store import open_store

        store = open_store(home)
        try:
            store.audit("note", "default", "development", "kb", "<img src=x onerror=window.pwned=1>")
        finally:
            store.close()
        browser.set_window_size(400, 900)
        click(wait, (By.ID, "show-audit"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "audit-rows"), "api-rotate-password"))
        assert "api-restore" in browser.find_element(By.ID, "audit-rows").text
        assert "<img src=x onerror=window.pwned=1>" in browser.find_element(By.ID, "audit-rows").text
        assert browser.execute_script("return window.pwned === undefined && !document.querySelector('#audit-rows img')")
        assert "token=alice" in browser.find_element(By.ID, "audit-rows").text
        no_sideways_scroll(browser)
        browser.save_screenshot(str(ARTIFACTS / "dashboard-audit-400px.png"))

        # a member: no audit view (and the API refuses it), no restore
        browser.find_element(By.ID, "logout").click()
        wait.until(EC.visibility_of_element_located((By.ID, "login")))
        no_sideways_scroll(browser)
        browser.set_window_size(1200, 900)
        browser.find_element(By.ID, "token").send_keys(member, Keys.ENTER)
        wait.until(EC.text_to_be_present_in_element((By.ID, "who"), "bob (member)"))
        assert not browser.find_element(By.ID, "show-audit").is_displayed()
        assert httpx.get(server.url + "/api/audit", headers={"Authorization": f"Bearer {member}"}).status_code == 403
        click(wait, (By.CSS_SELECTOR, "#service-kb [data-action=details]"))
        wait.until(EC.presence_of_element_located((By.ID, "backup-1")))
        assert not browser.find_elements(By.CSS_SELECTOR, "[data-action=restore]")
        assert not browser.find_element(By.ID, "detail-rotate").is_displayed()
    finally:
        server.stop()
        profile = profile_id(home)
        if profile:
            sweep(docker_client, f"paas.profile={profile}")

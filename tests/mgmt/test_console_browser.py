"""The web console in a real headless browser (Debian's chromium and chromium-driver, driven by
selenium): log in, go through each page, and watch it follow what AMQP clients do, and AMQP see
what the page did. One browser and one embedded broker serve the whole module.

`.ci/run` installs chromium; elsewhere these tests are skipped naming what is missing, unless
AMQPBROKER_REQUIRE_TOOLS is set, as CI sets it, where its absence fails them. The queues page's
screenshot is saved in the test's temporary directory, or, with AMQPBROKER_SCREENSHOTS=DIR, as
DIR/console-queues.png (the README's is docs/console-queues.png).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from amqpbroker.testing import Broker

from .client import ApiClient, segment

# A browser and pages that refresh every 5 seconds: each test takes a few.
pytestmark = pytest.mark.slow

WAIT = 20.0
"""Seconds a page has to show something: the console refreshes every 5."""


def _browser_paths() -> tuple[str, str]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromium-driver", driver)) if path is None]
    if missing:
        message = f"{' and '.join(missing)} not installed (Debian packages chromium, chromium-driver; .ci/run installs them)"
        if os.environ.get("AMQPBROKER_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    return chromium, driver


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    with Broker(http_port=0) as started:
        yield started


@pytest.fixture(scope="module")
def browser(broker: Broker) -> Iterator[WebDriver]:
    chromium, driver = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    started = webdriver.Chrome(service=Service(driver), options=options)
    try:
        started.get(broker.http_url + "/")
        _log_in(started, "guest", "guest")
        WebDriverWait(started, WAIT).until(lambda b: b.find_element(By.ID, "user").text == "guest")
        yield started
    finally:
        started.quit()


@pytest.fixture
def console(browser: WebDriver, broker: Broker) -> Console:
    return Console(browser, broker.http_url)


@pytest.fixture
def amqp(broker: Broker) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    yield connection.channel()
    if connection.is_open:
        connection.close()


@pytest.fixture
def api(broker: Broker) -> ApiClient:
    return ApiClient(broker.http_url)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _log_in(browser: WebDriver, user: str, password: str) -> None:
    form = browser.find_element(By.ID, "login")
    WebDriverWait(browser, WAIT).until(lambda _: form.is_displayed())
    for name, value in (("username", user), ("password", password)):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button").click()


class Console:
    """The browser on the console, with the steps the tests take."""

    def __init__(self, browser: WebDriver, url: str) -> None:
        self.browser = browser
        self.url = url

    def until(self, condition: Callable[[WebDriver], Any]) -> Any:
        return WebDriverWait(self.browser, WAIT, ignored_exceptions=(WebDriverException,)).until(condition)

    def open(self, link: str) -> None:
        """Clicks a navigation link, as a person would."""
        self.browser.find_element(By.LINK_TEXT, link).click()
        self.shows(link)

    def shows(self, heading: str) -> None:
        """Waits for the page headed `heading`."""
        self.until(lambda b: b.find_element(By.CSS_SELECTOR, "#page h1").text == heading)

    def go(self, route: str) -> None:
        self.browser.get(f"{self.url}/#/{route}")

    def notice(self) -> str:
        return self.until(lambda b: b.find_element(By.ID, "notice").text)

    def row(self, text: str) -> WebElement:
        """The table row with a cell reading exactly `text`."""
        def found(browser: WebDriver) -> WebElement | bool:
            for row in browser.find_elements(By.CSS_SELECTOR, "#page tbody tr"):
                if text in [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]:
                    return row
            return False

        return self.until(found)

    def row_in(self, title: str, text: str) -> WebElement:
        """The row of section `title`'s table with a cell reading exactly `text`."""
        return self.browser.find_element(By.XPATH, f"//section[h2='{title}']//tr[td='{text}']")

    def cells(self, text: str) -> list[str]:
        """The texts of the row `row(text)` finds, read in one retried step: the page's refresh
        may replace the row between finding and reading it."""
        return self.until(lambda _: [cell.text for cell in self.row(text).find_elements(By.TAG_NAME, "td")])

    def cells_in(self, title: str, text: str) -> list[str]:
        """The texts of the row `row_in(title, text)` finds, read in one retried step (see `cells`)."""
        return self.until(lambda _: [cell.text for cell in self.row_in(title, text).find_elements(By.TAG_NAME, "td")])

    def fact(self, label: str) -> str:
        """The value the page's facts give for `label`."""
        return self.browser.find_element(By.XPATH, f"//dl[@class='facts']/dt[.='{label}']/following-sibling::dd[1]").text

    def section(self, title: str) -> WebElement:
        return self.until(lambda b: b.find_element(By.XPATH, f"//section[h2[normalize-space()='{title}']]"))

    def form(self, title: str) -> WebElement:
        return self.section(title).find_element(By.TAG_NAME, "form")

    def fill(self, form: WebElement, **values: str | bool) -> None:
        for name, value in values.items():
            field = form.find_element(By.NAME, name)
            if isinstance(value, bool):
                if field.is_selected() != value:
                    field.click()
            elif field.tag_name == "select":
                field.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
            else:
                field.clear()
                field.send_keys(value)

    def submit(self, form: WebElement, **values: str | bool) -> str:
        """Fills and submits `form`; the notice it leads to."""
        self.clear_notice()
        self.fill(form, **values)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        return self.notice()

    def press(self, button: Callable[[], WebElement], confirm: bool = False) -> str:
        """Clicks the button `button()` finds, found again if a refresh re-rendered it before the
        click could land (and only then: a click that landed is never repeated); the notice it
        leads to."""
        self.clear_notice()
        WebDriverWait(self.browser, WAIT, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda browser: button().click() or True)
        if confirm:
            self.until(expected_conditions.alert_is_present()).accept()
        return self.notice()

    def clear_notice(self) -> None:
        self.browser.execute_script("document.getElementById('notice').textContent = ''")


def _message_count(amqp, queue: str) -> int:
    return amqp.queue_declare(queue, passive=True).method.message_count


def _publish(amqp, queue: str, count: int) -> None:
    for number in range(count):
        amqp.basic_publish("", queue, f"message {number}".encode())


def test_a_wrong_password_is_refused(browser: WebDriver, console: Console) -> None:
    browser.find_element(By.ID, "logout").click()
    _log_in(browser, "guest", "wrong")
    assert console.notice() == "Login failed."
    assert not browser.find_element(By.ID, "nav").is_displayed()
    _log_in(browser, "guest", "guest")
    console.until(lambda b: b.find_element(By.ID, "user").text == "guest")


def test_the_overview_shows_totals_and_charts(console: Console, amqp) -> None:
    queue = _name("overview")
    amqp.queue_declare(queue)
    _publish(amqp, queue, 2)
    console.open("Overview")
    console.until(lambda b: int(b.find_element(By.CSS_SELECTOR, "[data-total=queues] .value").text) >= 1)
    connections = console.browser.find_element(By.CSS_SELECTOR, "[data-total=connections] .value")
    assert int(connections.text) >= 1
    charts = console.browser.find_elements(By.CSS_SELECTOR, "canvas.chart")
    assert len(charts) == 2 and all(chart.size["width"] > 300 for chart in charts)
    ready = console.browser.find_element(By.CSS_SELECTOR, "[data-series=ready] .figure")
    assert int(ready.text) >= 2
    console.browser.find_element(By.CSS_SELECTOR, "[data-series=publish] .figure")
    amqp.queue_delete(queue)


def test_queue_depth_follows_amqp_and_purge_empties_it(console: Console, amqp, tmp_path: Path) -> None:
    queue = "orders"  # the screenshot's: the module's broker is its own
    amqp.queue_declare(queue, durable=True)
    _publish(amqp, queue, 1)
    console.open("Queues")
    assert console.cells(queue)[4:8] == ["1", "0", "1", "0"]
    _publish(amqp, queue, 2)
    console.until(lambda _: console.cells(queue)[4] == "3")
    consumer = amqp.connection.channel()
    consumer.basic_qos(prefetch_count=1)
    consumer.basic_consume(queue, lambda *_: None)
    amqp.connection.process_data_events(time_limit=0.2)
    console.until(lambda _: console.cells(queue)[4:8] == ["2", "1", "3", "1"])
    shot = Path(os.environ.get("AMQPBROKER_SCREENSHOTS", tmp_path)) / "console-queues.png"
    assert console.browser.save_screenshot(str(shot))
    consumer.close()

    console.row(queue).find_element(By.LINK_TEXT, queue).click()
    console.shows(f"Queue {queue}")
    assert console.press(lambda: console.browser.find_element(By.XPATH, "//button[.='Purge']")) == "Queue purged."
    assert _message_count(amqp, queue) == 0
    amqp.queue_delete(queue)


def test_names_are_shown_as_text(console: Console, amqp) -> None:
    queue = "<script>window.injected=1</script><img src=x onerror='window.injected=2'>" + _name("q")
    amqp.queue_declare(queue, auto_delete=True)
    console.go("queues")
    link = console.row(queue).find_element(By.TAG_NAME, "a")
    assert link.text == queue
    assert console.browser.find_elements(By.CSS_SELECTOR, "#page script, #page img") == []
    link.click()
    console.shows(f"Queue {queue}")
    assert console.browser.execute_script("return window.injected") is None


def test_a_queue_is_added_published_to_peeked_at_and_deleted(console: Console, amqp) -> None:
    queue = _name("tasks")
    console.go("queues")
    add = console.form("Add a queue")
    assert console.submit(add, name=queue, durable=False) == f"Queue {queue} added."
    console.row(queue).find_element(By.LINK_TEXT, queue).click()
    console.shows(f"Queue {queue}")

    publish = console.form("Publish a message")
    assert console.submit(publish, payload="hello <b>there</b>") == "Message published."
    assert _message_count(amqp, queue) == 1
    # The page shows what the message takes up, once its next refresh has it.
    console.until(lambda _: console.fact("Message bytes") == "18 B")
    assert (console.fact("In memory"), console.fact("Persistent")) == ("18 B", "0")
    assert console.fact("Consumer capacity") == "0%"  # no consumers
    get = console.form("Get messages")
    assert console.submit(get, ackmode="reject_requeue_true", count="5") == "Messages fetched."
    payload = console.until(lambda _: console.section("Get messages").find_element(By.TAG_NAME, "pre"))
    assert payload.text == "hello <b>there</b>"
    assert _message_count(amqp, queue) == 1
    method, _, body = amqp.basic_get(queue, auto_ack=True)
    assert (method.redelivered, body) == (True, b"hello <b>there</b>")

    assert console.press(lambda: console.browser.find_element(By.XPATH, "//button[.='Delete']"), confirm=True) == (
        "Queue deleted.")
    console.shows("Queues")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        _message_count(amqp, queue)


def test_an_exchange_is_added_bound_published_to_and_deleted(console: Console, amqp) -> None:
    exchange, queue = _name("events"), _name("audit")
    amqp.queue_declare(queue, auto_delete=True)
    console.open("Exchanges")
    add = console.form("Add an exchange")
    assert console.submit(add, name=exchange, type="topic") == f"Exchange {exchange} added."
    console.row(exchange).find_element(By.LINK_TEXT, exchange).click()
    console.shows(f"Exchange {exchange}")

    bind = console.form("Bindings from this exchange")
    assert console.submit(bind, destination=queue, routing_key="order.*") == "Binding added."
    assert console.cells("order.*")[:2] == [f"queue {queue}", "order.*"]
    publish = console.form("Publish a message")
    assert console.submit(publish, routing_key="order.paid", payload="paid") == "Message published."
    assert console.browser.find_element(By.ID, "routed").text == "Routed to at least one queue."
    method, _, body = amqp.basic_get(queue, auto_ack=True)
    assert (method.exchange, method.routing_key, body) == (exchange, "order.paid", b"paid")

    unbind = lambda: console.row("order.*").find_element(By.XPATH, ".//button[.='Unbind']")  # noqa: E731
    assert console.press(unbind) == "Binding removed."
    assert console.submit(publish, routing_key="order.paid", payload="paid") == "Message published."
    assert console.browser.find_element(By.ID, "routed").text == "Not routed: no binding matched."

    assert console.press(lambda: console.section("Delete").find_element(By.TAG_NAME, "button"), confirm=True) == (
        "Exchange deleted.")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        amqp.exchange_declare(exchange, passive=True)
    console.row("amq.topic").find_element(By.LINK_TEXT, "amq.topic").click()
    console.shows("Exchange amq.topic")
    console.section("Publish a message")
    assert [h.text for h in console.browser.find_elements(By.CSS_SELECTOR, "#page h2")] == [
        "Bindings from this exchange", "Bindings to this exchange", "Publish a message"]
    assert console.browser.find_element(By.ID, "page").text.endswith("Publish message")


def test_connections_and_channels_are_listed_and_closed(console: Console, broker: Broker) -> None:
    provided = _name("worker")
    params = pika.URLParameters(broker.url)
    params.client_properties = {"connection_name": provided}
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        console.open("Connections")
        row = console.row(provided)
        assert console.cells(provided)[1:6] == [provided, "guest", "/", "AMQP 0-9-1", "1"]
        name = row.find_element(By.TAG_NAME, "td").text
        assert console.cells(f"{name} (1)")[1:4] == ["guest", "/", "confirm"]
        close = lambda: console.row(provided).find_element(By.XPATH, ".//button[.='Close']")  # noqa: E731
        assert console.press(close, confirm=True) == "Connection closed."
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
            connection.process_data_events(time_limit=5)
        assert closed.value.reply_code == 320
    finally:
        if connection.is_open:
            connection.close()


def test_users_vhosts_and_permissions_are_added_and_deleted(console: Console, api: ApiClient) -> None:
    user, vhost = _name("alice"), _name("staging")
    console.open("Admin")
    forms = {title: console.form(title) for title in ("Users", "Virtual hosts", "Permissions")}
    assert console.submit(forms["Users"], name=user, password="s3cret", tags="monitoring") == f"User {user} added."
    assert console.cells(user)[1] == "monitoring"
    assert console.submit(forms["Virtual hosts"], name=vhost, description="for tests") == f"Virtual host {vhost} added."
    assert console.cells(vhost)[1] == "for tests"
    assert console.submit(forms["Permissions"], user=user, vhost=vhost, configure="^$", write=".*", read="^app") == (
        f"Permissions of {user} in {vhost} set.")
    assert api.get(f"/api/permissions/{segment(vhost)}/{segment(user)}").json["read"] == "^app"
    assert api.as_user(user, "s3cret").get("/api/whoami").status == 200

    assert console.press(lambda: console.row_in("Permissions", user).find_element(By.TAG_NAME, "button")) == (
        f"Permissions of {user} in {vhost} cleared.")
    assert api.get(f"/api/permissions/{segment(vhost)}/{segment(user)}").status == 404
    delete_vhost = lambda: console.row_in("Virtual hosts", vhost).find_element(By.TAG_NAME, "button")  # noqa: E731
    assert console.press(delete_vhost, confirm=True) == f"Virtual host {vhost} deleted."
    delete_user = lambda: console.row_in("Users", user).find_element(By.TAG_NAME, "button")  # noqa: E731
    assert console.press(delete_user, confirm=True) == f"User {user} deleted."
    assert api.get(f"/api/vhosts/{segment(vhost)}").status == 404
    assert api.get(f"/api/users/{segment(user)}").status == 404


def test_topic_permissions_are_set_and_cleared(console: Console, api: ApiClient) -> None:
    user = _name("carol")
    assert api.put(f"/api/users/{user}", {"password": "s3cret", "tags": ""}).status == 201
    try:
        console.open("Admin")
        form = console.form("Topic permissions")
        assert console.submit(form, user=user, exchange="amq.topic", write="^{username}\\.", read="") == (
            f"Topic permissions of {user} on amq.topic in / set.")
        assert api.get(f"/api/topic-permissions/%2F/{user}").json == [
            {"user": user, "vhost": "/", "exchange": "amq.topic", "write": "^{username}\\.", "read": ""}]
        cells = console.cells_in("Topic permissions", user)
        assert cells[:5] == [user, "/", "amq.topic", "^{username}\\.", ""]
        clear = lambda: console.row_in("Topic permissions", user).find_element(By.TAG_NAME, "button")  # noqa: E731
        assert console.press(clear) == f"Topic permissions of {user} on amq.topic in / cleared."
        assert api.get(f"/api/topic-permissions/%2F/{user}").status == 404
    finally:
        api.delete(f"/api/users/{user}")


def test_a_refused_change_shows_the_reason(console: Console) -> None:
    console.go("queues")
    console.shows("Queues")
    add = console.form("Add a queue")
    assert console.submit(add, name="amq.reserved") == "Failed: Access refused."
    assert "error" in console.browser.find_element(By.ID, "notice").get_attribute("class")


def test_a_policy_is_added_applied_and_deleted(console: Console, amqp, api: ApiClient) -> None:
    policy, queue = _name("cap"), _name("capped")
    amqp.queue_declare(queue, auto_delete=True)
    console.open("Policies")
    add = console.form("Add a policy")
    assert console.submit(add, name=policy, pattern=f"^{queue}$", apply_to="queues", priority="5",
                          definition='{"max-length": 1}') == f"Policy {policy} added."
    assert console.cells(policy)[1:6] == [policy, f"^{queue}$", "queues", '{"max-length":1}', "5"]
    _publish(amqp, queue, 3)
    assert _message_count(amqp, queue) == 1

    assert console.submit(add, name=_name("bad"), definition="{not json").startswith("Failed: ")
    delete = lambda: console.row(policy).find_element(By.XPATH, ".//button[.='Delete']")  # noqa: E731
    assert console.press(delete) == f"Policy {policy} deleted."
    assert api.get(f"/api/policies/%2F/{segment(policy)}").status == 404
    _publish(amqp, queue, 2)
    assert _message_count(amqp, queue) == 3


def test_an_operator_policy_caps_a_queue_and_is_deleted(console: Console, amqp, api: ApiClient) -> None:
    policy, queue = _name("ceiling"), _name("ceiled")
    amqp.queue_declare(queue, auto_delete=True, arguments={"x-max-length": 10})
    console.open("Policies")
    add = console.form("Add an operator policy")
    assert console.submit(add, name=policy, pattern=f"^{queue}$", apply_to="queues",
                          definition='{"max-length": 2}') == f"Operator policy {policy} added."
    cells = console.cells_in("Operator policies", policy)
    assert cells[1:6] == [policy, f"^{queue}$", "queues", '{"max-length":2}', "0"]
    _publish(amqp, queue, 4)
    assert _message_count(amqp, queue) == 2

    console.go(f"queue/%2F/{segment(queue)}")
    console.shows(f"Queue {queue}")
    console.until(lambda b: f"operator policy {policy}" in b.find_element(By.ID, "page").text)
    console.open("Policies")
    delete = lambda: console.row_in("Operator policies", policy).find_element(By.TAG_NAME, "button")  # noqa: E731
    assert console.press(delete) == f"Operator policy {policy} deleted."
    assert api.get(f"/api/operator-policies/%2F/{segment(policy)}").status == 404
    _publish(amqp, queue, 2)
    assert _message_count(amqp, queue) == 4


@pytest.mark.parametrize(("tags", "sections"), [("policymaker", ["Policies"]), ("management", [])])
def test_what_the_console_offers_follows_the_users_tags(
    browser: WebDriver, console: Console, api: ApiClient, tags: str, sections: list[str]
) -> None:
    user, policy = _name(tags), _name("operated")
    assert api.put(f"/api/users/{user}", {"password": "secret", "tags": tags}).status == 201
    assert api.put(f"/api/permissions/%2F/{user}", {"configure": ".*", "write": ".*", "read": ".*"}).status == 201
    assert api.put(f"/api/operator-policies/%2F/{policy}",
                   {"pattern": "^nothing$", "apply-to": "queues", "definition": {"max-length": 5}}).status == 201
    try:
        browser.find_element(By.ID, "logout").click()
        _log_in(browser, user, "secret")
        console.until(lambda b: b.find_element(By.ID, "user").text == user)
        shown = [link.text for link in browser.find_elements(By.CSS_SELECTOR, "#nav a") if link.is_displayed()]
        assert shown == ["Overview", "Connections", "Exchanges", "Queues", *sections]
        browser.refresh()  # the user is asked for again with the credentials kept
        console.until(lambda b: b.find_element(By.ID, "user").text == user)
        assert [link.text for link in browser.find_elements(By.CSS_SELECTOR, "#nav a") if link.is_displayed()] == shown
        if sections:
            console.open("Policies")
            console.section("Add a policy")
            cells = console.cells_in("Operator policies", policy)
            assert cells == ["/", policy, "^nothing$", "queues", '{"max-length":5}', "0"]
            assert not browser.find_elements(By.XPATH, "//section[h2='Add an operator policy']")
    finally:
        browser.find_element(By.ID, "logout").click()
        _log_in(browser, "guest", "guest")
        console.until(lambda b: b.find_element(By.ID, "user").text == "guest")
        api.delete(f"/api/operator-policies/%2F/{policy}")
        api.delete(f"/api/users/{user}")
    shown = [link.text for link in browser.find_elements(By.CSS_SELECTOR, "#nav a") if link.is_displayed()]
    assert shown == ["Overview", "Connections", "Exchanges", "Queues", "Admin", "Policies"]


def test_the_overview_charts_message_rates(console: Console, amqp) -> None:
    queue = _name("rates")
    amqp.queue_declare(queue)
    console.open("Overview")

    def publishing(browser: WebDriver) -> float:
        # Publishes while it waits, so that every statistics interval counts some.
        _publish(amqp, queue, 5)
        return float(browser.find_element(By.CSS_SELECTOR, "[data-series=publish] .figure").text.removesuffix("/s"))

    assert console.until(publishing) > 0
    amqp.queue_delete(queue)

"""The chat page in a real browser (Debian chromium via Playwright).

Against the real server (`python main.py`, offline model, temp DATA_DIR): keyboard-only use at phone
width (the shared `live_server`); ask, wait for the streamed cited answer, rate it 👍 with a comment
and find that rating stored for the answer's span id (a private server, stopped to read its store);
the magic-key flow in production mode.
Against a scripted stand-in: chunks split mid-line and mid-character, every line type, hostile
Markdown, errors. Screenshots go to e2eTests/artifacts/.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import async_playwright, expect

from e2eTests.browser_support import (ARTIFACTS, CHROMIUM, LAUNCH_ARGS, StandInSite, ndjson, split_bytes, status,
                                      stream, unexpected, watch_console)
from services.storage.database import FEEDBACK, open_database
from tests.utils.app import CHAT_QUESTION, make_settings

SPAN_RE = re.compile(r"^[0-9a-f]{16}$")
pytestmark = [pytest.mark.browser, pytest.mark.slow]
ANSWER_TIMEOUT = 60_000  # ms; the offline model answers in about a second once warm


@pytest.fixture
async def browser():
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def standin():
    site = await StandInSite().start()
    yield site
    await site.stop()


async def focus_id(page) -> str:
    return await page.evaluate("document.activeElement && document.activeElement.id")


async def ask(page, text: str) -> None:
    await page.locator("#question").fill(text)
    await page.get_by_role("button", name="Send").click()


# --- the real server ----------------------------------------------------------------------------

async def test_keyboard_only_at_phone_width(live_server, browser):
    context = await browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True)
    page = await context.new_page()
    problems = watch_console(page)
    await page.goto(live_server + "/")

    for _ in range(15):  # Tab from the top of the page until the question box has focus
        await page.keyboard.press("Tab")
        if await focus_id(page) == "question":
            break
    assert await focus_id(page) == "question", "Tab never reached the question box"
    await page.keyboard.type(CHAT_QUESTION)
    await page.keyboard.press("Enter")

    turn = page.locator(".turn.assistant").last
    await expect(turn).to_have_attribute("data-span-id", SPAN_RE, timeout=ANSWER_TIMEOUT)
    await expect(turn.locator(".answer a[href^='https://']").first).to_be_visible()
    assert await focus_id(page) == "question", "focus should stay in the question box after sending"

    # Nothing overflows sideways at 375px, and the send button is on screen.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    box = await page.get_by_role("button", name="Send").bounding_box()
    assert box and box["x"] + box["width"] <= 375
    await page.screenshot(path=str(ARTIFACTS / "chat-phone.png"))

    # Back up to the rating buttons, with a visible focus ring.
    for _ in range(6):
        await page.keyboard.press("Shift+Tab")
        if await page.evaluate("document.activeElement.classList.contains('vote')"):
            break
    focused = page.locator(":focus")
    await expect(focused).to_have_attribute("aria-label", "Not helpful")
    outline = await page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                                  " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()")
    assert outline[0] != "none" and outline[1] >= 2, outline

    # Enter opens the form with focus inside it; Escape closes it and gives focus back.
    await page.keyboard.press("Enter")
    comment = turn.get_by_label("What was wrong or missing? (optional)")
    await expect(comment).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(comment).to_be_hidden()
    await expect(turn.get_by_role("button", name="Not helpful")).to_be_focused()
    assert unexpected(problems) == []
    await context.close()


async def test_cited_answer_rated_thumbs_up_is_stored(dev_server, browser):
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems = watch_console(page)
    await page.goto(dev_server.base_url + "/")

    await ask(page, CHAT_QUESTION)
    turn = page.locator(".turn.assistant").last
    citation = turn.locator(".answer a[href^='https://']").first
    await expect(citation).to_be_visible(timeout=ANSWER_TIMEOUT)
    await expect(citation).to_have_attribute("target", "_blank")
    await expect(citation).to_have_attribute("rel", "noopener noreferrer")
    await expect(turn).to_have_attribute("data-span-id", SPAN_RE, timeout=ANSWER_TIMEOUT)
    span_id = await turn.get_attribute("data-span-id")
    await expect(page.locator("#question")).to_be_focused()

    # 👍 opens the form with focus in the comment box; submitting sends the answer's span id.
    await turn.get_by_role("button", name="Helpful", exact=True).click()
    comment = turn.get_by_label("What was useful? (optional)")
    await expect(comment).to_be_focused()
    await comment.fill("Clear steps and a working link (e2e)")
    async with page.expect_request("**/api/feedback") as feedback_info:
        await turn.get_by_role("button", name="Submit feedback").click()
    sent = (await feedback_info.value).post_data_json
    assert sent == {"span_id": span_id, "feedback_type": "thumbs_up", "comment": "Clear steps and a working link (e2e)"}
    await expect(turn.locator(".feedback-result")).to_have_text("Thanks for your feedback!")
    await expect(turn.get_by_role("button", name="Helpful", exact=True)).to_be_disabled()
    await page.screenshot(path=str(ARTIFACTS / "chat-desktop.png"))
    await page.emulate_media(color_scheme="dark")
    await page.screenshot(path=str(ARTIFACTS / "chat-desktop-dark.png"))
    await page.emulate_media(color_scheme="light")

    # A follow-up continues the same conversation.
    async with page.expect_request("**/api/chat") as follow_info:
        await ask(page, "And how do I stream the reply?")
    conversation_id = (await follow_info.value).post_data_json["conversation_id"]
    await expect(page.locator(".turn.assistant[data-span-id]")).to_have_count(2, timeout=ANSWER_TIMEOUT)
    # (reading a streamed body back through the browser is flaky in CDP, so ask the API instead)
    async with httpx.AsyncClient(base_url=dev_server.base_url, timeout=30) as http:
        turns = (await http.get(f"/api/conversations/{conversation_id}")).json()["turns"]
    assert [t["span_id"] for t in turns][0] == span_id  # the page kept the metadata's conversation id
    assert turns[0]["status"] == "completed" and len(turns) == 2
    assert unexpected(problems) == [] and problems == []
    await context.close()

    # The embedded store serves one process: read it once the server has stopped.
    dev_server.stop()
    database = await open_database(make_settings(dev_server.root, data_dir=dev_server.data_dir))
    try:
        row = await database[FEEDBACK].find_one({"_id": span_id})
    finally:
        await database.close()
    assert row is not None, f"no feedback stored for span {span_id}"
    assert row["span_id"] == span_id
    assert row["feedback_type"] == "thumbs_up"
    assert row["comment"] == "Clear steps and a working link (e2e)"
    assert row["conversation_id"] == conversation_id


async def test_production_asks_for_the_key_once_and_again_when_refused(prod_server, browser):
    context = await browser.new_context(viewport={"width": 1024, "height": 800})
    page = await context.new_page()
    problems = watch_console(page)
    await page.goto(prod_server.base_url + "/")
    dialog = page.get_by_role("dialog", name="Magic key")
    key_input = dialog.get_by_label("Your magic key")

    await expect(dialog).to_be_visible()  # asked at once: the page knows the mode from /api/config
    await expect(key_input).to_be_focused()
    await page.screenshot(path=str(ARTIFACTS / "key-dialog.png"))
    await page.keyboard.press("Escape")  # dismissed: the question then gets a 401 and the page asks again
    await expect(dialog).to_be_hidden()
    await ask(page, "What is Semantic Kernel?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("A magic key is required")
    await key_input.fill("e2e-disabled-key")
    await page.keyboard.press("Enter")
    await expect(dialog).to_contain_text("not valid or has been disabled")  # 403: asked again
    await key_input.fill("e2e-valid-key")
    async with page.expect_request("**/api/chat") as retried:
        await dialog.get_by_role("button", name="Save key").click()
    assert (await retried.value).post_data_json["magic_key"] == "e2e-valid-key"
    await expect(page.locator(".turn.assistant").last).to_have_attribute("data-span-id", SPAN_RE, timeout=ANSWER_TIMEOUT)
    await expect(page.locator(".turn.user")).to_have_count(1)  # the question was retried, not duplicated
    assert await page.evaluate("localStorage.getItem('csharpAiBuddy.magicKey')") == "e2e-valid-key"

    await page.reload()  # remembered: no dialog this time
    await expect(page.get_by_role("button", name="Magic key")).to_be_visible()
    await expect(dialog).to_be_hidden()
    assert unexpected(problems) == []
    await context.close()


# --- the scripted stand-in ----------------------------------------------------------------------

async def test_stream_split_anywhere_renders_every_line_type_safely(standin, browser):
    tool_started, half_way = standin.gate(), standin.gate()
    head = ndjson({"type": "metadata", "span_id": "0123456789abcdef", "timestamp": "2026-01-01T00:00:00Z",
                   "conversation_id": "conv-e2e-0001"},
                  {"type": "tool_call", "content": "Searching the knowledge base…", "name": "search_knowledge_base"})
    middle = ndjson({"type": "tool output", "content": "Found 2 results", "sources": [
        {"title": "<img src=x onerror=window.__xss=1>Quickstart", "url": "https://learn.microsoft.com/dotnet/ai/quickstart", "score": 0.9},
        {"title": "Sneaky", "url": "javascript:window.__xss=2", "score": 0.8}]},
        {"type": "content", "content": "## Héllo\n\n"})
    tail_text = ("Greetings 👋 use `IChatClient` <script>window.__xss=3</script> <img src=x onerror=\"window.__xss=4\">\n\n"
                 "```csharp\nvar s = \"<b>\";\n```\n\nSee [the docs](https://learn.microsoft.com/dotnet/ai) "
                 "and [this](javascript:window.__xss=5).")
    tail = ndjson({"type": "content", "content": tail_text},
                  {"type": "complete", "span_id": "0123456789abcdef", "timestamp": "2026-01-01T00:00:01Z"})
    inside_emoji = tail.index("👋".encode()) + 2
    standin.chat_replies.append(stream(split_bytes(head, 7), tool_started, split_bytes(middle, 5),
                                       tail[:inside_emoji], half_way, split_bytes(tail[inside_emoji:], 6)))

    page = await browser.new_page(viewport={"width": 1100, "height": 900})
    problems = watch_console(page)
    await page.goto(standin.base_url + "/")
    await page.locator("#filters summary").click()
    await page.get_by_label("AI library").select_option("Semantic Kernel")
    await expect(page.locator("#filter-summary")).to_have_text("Semantic Kernel")
    await ask(page, "Hello?")

    turn = page.locator(".turn.assistant").last
    await expect(turn.locator(".status-note")).to_have_text("Searching the knowledge base…")
    await expect(turn).to_have_attribute("aria-busy", "true")
    tool_started.set()
    await expect(turn.locator(".answer h4")).to_have_text("Héllo")  # "##" renders under the page's own headings
    await expect(turn).to_have_class(re.compile(r"\bstreaming\b"))
    await expect(turn.locator(".answer")).not_to_contain_text("Greetings")  # half a line is not shown yet
    half_way.set()

    await expect(turn).to_have_attribute("aria-busy", "false")
    answer = turn.locator(".answer")
    await expect(answer).to_contain_text("Greetings 👋 use IChatClient <script>window.__xss=3</script>")
    await expect(answer.locator("pre code")).to_have_text('var s = "<b>";')
    await expect(answer.locator("img, script, b")).to_have_count(0)
    links = answer.locator("a")
    await expect(links).to_have_count(1)
    await expect(links.first).to_have_attribute("href", "https://learn.microsoft.com/dotnet/ai")
    await expect(turn.locator(".sources summary")).to_have_text("Sources consulted (1)")  # the javascript: source is dropped
    await expect(turn.locator(".source-list a")).to_have_text("<img src=x onerror=window.__xss=1>Quickstart")
    await expect(turn.get_by_role("button", name="Helpful", exact=True)).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "stream-markdown.png"))
    assert await page.evaluate("window.__xss") is None
    assert standin.chat_bodies[0]["filters"] == {"aiLibrary": "Semantic Kernel"}
    assert "conversation_id" not in standin.chat_bodies[0]

    # The follow-up carries the conversation id (and the history); "New conversation" forgets it.
    standin.chat_replies.extend([stream(ndjson({"type": "metadata", "span_id": "1" * 16, "conversation_id": "conv-e2e-0001"},
                                               {"type": "complete", "span_id": "1" * 16})),
                                 stream(ndjson({"type": "metadata", "span_id": "2" * 16, "conversation_id": "conv-e2e-0002"},
                                               {"type": "complete", "span_id": "2" * 16}))])
    await ask(page, "And then?")
    await expect(page.locator(".turn.assistant[data-span-id]")).to_have_count(2)
    assert standin.chat_bodies[1]["conversation_id"] == "conv-e2e-0001"
    assert [h["role"] for h in standin.chat_bodies[1]["history"]] == ["user", "assistant"]
    await page.get_by_role("button", name="New conversation").click()
    await expect(page.locator(".turn")).to_have_count(0)
    await expect(page.locator("#question")).to_be_focused()
    await ask(page, "Fresh start")
    await expect(page.locator(".turn.assistant[data-span-id]")).to_have_count(1)
    assert "conversation_id" not in standin.chat_bodies[2] and standin.chat_bodies[2]["history"] == []
    assert unexpected(problems) == []


async def test_errors_reach_the_person(standin, browser):
    standin.chat_replies.extend([
        stream(ndjson({"type": "metadata", "span_id": "3" * 16}, {"type": "content", "content": "Partial "},
                      {"type": "error", "content": "Sorry, the model is unavailable right now."})),
        status(429, {"detail": "Too many questions. Please wait 30 seconds."}, {"Retry-After": "30"}),
        stream(ndjson({"type": "metadata", "span_id": "4" * 16}, {"type": "content", "content": "Cut off"})),
        stream(ndjson({"type": "metadata", "span_id": "5" * 16}, {"type": "content", "content": "Fine."},
                      {"type": "complete", "span_id": "5" * 16})),
    ])
    standin.feedback_replies.append(status(503, {"detail": "Your feedback could not be saved right now."}))
    page = await browser.new_page()
    problems = watch_console(page)
    await page.goto(standin.base_url + "/")
    alerts = page.get_by_role("alert")

    await ask(page, "one")
    await expect(alerts.last).to_have_text("Sorry, the model is unavailable right now.")
    await ask(page, "two")
    await expect(alerts).to_have_count(2)
    await expect(alerts.last).to_have_text("Too many questions. Please wait 30 seconds.")
    await ask(page, "three")
    await expect(alerts.last).to_have_text("The answer stopped before it was finished. Please try again.")
    await expect(page.locator(".vote")).to_have_count(0)  # no rating of an answer that did not complete

    await ask(page, "four")
    turn = page.locator(".turn.assistant").last
    await turn.get_by_role("button", name="Not helpful").click()
    await turn.get_by_label("What was wrong or missing? (optional)").fill("too short")
    await turn.get_by_role("button", name="Submit feedback").click()
    await expect(turn.locator(".feedback-result")).to_have_text("Your feedback could not be saved right now.")
    await turn.get_by_role("button", name="Submit feedback").click()  # the form stays open for a retry
    await expect(turn.locator(".feedback-result")).to_have_text("Thanks for your feedback!")
    assert standin.feedback_bodies[-1] == {"span_id": "5" * 16, "feedback_type": "thumbs_down", "comment": "too short"}
    assert unexpected(problems) == []

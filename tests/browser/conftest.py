"""Headless Chromium (Debian's `chromium`) driven by Playwright, against the test stack.

Chromium counts http://127.0.0.1 as a secure context, so the session's `Secure` and
`__Host-` cookies work over the stack's plain HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from harness import environment
from harness.accounts import bearer, login, register
from harness.stack import Stack

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = environment.ROOT / "test-artifacts" / "screenshots"

# No skip when it is missing: scripts/test installs it, and a browser suite that
# quietly skips would hide a broken provisioning.
assert CHROMIUM.exists(), "Debian's chromium is not installed (scripts/test installs it: apt-get install chromium)"


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        await browser.close()


@pytest.fixture
async def page(browser: Browser, stack: Stack) -> AsyncIterator[Page]:
    """A fresh browser profile (no cookies) per test; a script error or a CSP violation fails it."""
    context = await browser.new_context(base_url=stack.base_url, accept_downloads=True)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            problems.append(message.text)

    page.on("console", on_console)
    yield page
    await context.close()
    assert not problems, problems


async def sign_in(page: Page, path: str, email: str, password: str) -> None:
    await page.goto(path)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("button", name="Sign out").wait_for()


async def screenshot(page: Page, name: str, **options: Any) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, **options)


async def new_seller(http: aiohttp.ClientSession, admin: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new account an admin made a seller: its registration (with the password, to sign in
    with in the browser) and an API session started after the change."""
    account = await register(http)
    async with http.put(
        f"/api/users/{account['user_id']}", json={"role": "seller"}, headers=bearer(admin["access_token"])
    ) as resp:
        assert resp.status == 200, await resp.text()
    return account, await login(http, account["email"], account["password"])

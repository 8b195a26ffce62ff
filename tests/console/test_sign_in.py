"""Signing in to the console, and what protects a session: one-time links,
clean URLs, the cookie's flags, CSRF on every form, the security headers."""

from urllib.parse import urlsplit

import httpx
import pytest

from tests.console.helpers import csrf_of, sign_in_link, signed_in

pytestmark = pytest.mark.engines


def test_a_page_without_a_session_redirects_to_a_sign_in_page_that_says_how(stack):
    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as browser:
        asked = browser.get("/console/approvals")
        assert asked.status_code == 303
        assert asked.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fapprovals"
        sign_in = browser.get(asked.headers["location"])
    assert sign_in.status_code == 401
    assert "modelog ui --as" in sign_in.text


def test_a_link_signs_in_once_lands_on_a_clean_url_and_sets_a_guarded_cookie(stack):
    link = sign_in_link("bob", "approver")
    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as browser:
        opened = browser.get(link)
        assert opened.status_code == 303
        assert opened.headers["location"] == "/console/models"  # the token is not in the URL any more
        assert opened.headers["cache-control"] == "no-store" and opened.headers["referrer-policy"] == "no-referrer"
        cookie = opened.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
        assert "secure" not in cookie  # plain http on the local stack: a Secure cookie would never come back
        models = browser.get("/console/models")
        assert models.status_code == 200 and "Signed in as <strong>bob</strong>" in models.text

    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as another:
        again = another.get(link)
    assert again.status_code == 401 and "used already" in again.text
    assert "modelog_session" not in again.headers.get("set-cookie", "")


def test_a_forged_or_altered_link_or_cookie_signs_nobody_in(stack):
    link = sign_in_link("mallory", "admin")
    base, _, token = link.partition("token=")
    token = token.split("&")[0]
    header, payload, signature = token.split(".")
    # One character in the middle changed: every one of its bits is signature
    # (the last character of the base64 carries padding bits too).
    flipped = "B" if signature[40] == "A" else "A"
    altered = f"{base}token={header}.{payload}.{signature[:40]}{flipped}{signature[41:]}"
    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as browser:
        assert browser.get(altered).status_code == 401
        browser.cookies.set("modelog_session", "eyJzdWIiOiJtYWxsb3J5In0.AAAA", path="/console")
        assert browser.get("/console/models").status_code == 303
    # A bearer token of the API is no sign-in link.
    from tests.e2e.helpers import token_for
    with httpx.Client(base_url=stack.url("registrar"), timeout=30) as browser:
        path = urlsplit(link).path
        assert browser.get(path, params={"token": token_for("mallory", "admin")}).status_code == 401


def test_every_console_response_carries_the_security_headers(stack):
    with signed_in(stack, "carol", "reader") as browser:
        for path in ("/console/models", "/console/sign-in", "/console/static/console.js", "/console/nowhere"):
            headers = browser.get(path).headers
            policy = headers["content-security-policy"]
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "same-origin"


def test_a_form_post_without_the_sessions_csrf_token_is_refused(stack):
    with signed_in(stack, "carol", "reader") as browser:
        page = browser.get("/console/models")
        missing = browser.post("/console/sign-out", data={})
        assert missing.status_code == 403 and "reload the page" in missing.text
        wrong = browser.post("/console/sign-out", data={"csrf_token": "not-the-one"})
        assert wrong.status_code == 403
        out = browser.post("/console/sign-out", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
        assert browser.get("/console/models").status_code == 303  # signed out: back to the sign-in page

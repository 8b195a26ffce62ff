"""Console sign-in against the real OpenID Connect provider of the local stack
(Ory Hydra behind modelog-oidc's login page), driven over HTTP as a browser
would: the authorization URL, the provider's login form, the redirects back
to the console's callback, the code exchange, the ID token's verification
and the Identity it proves. And what must be refused: another sign-in's
state, a code used twice, a code without its PKCE verifier, a token for
another client.

The provider runs alone here, on a home and port of its own, started through
the same engine code as `modelog up`; no registrar runs, so the browser's
last redirect (to the console's callback) is read, not followed.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

from modelog_platform.engines.layout import Layout
from modelog_platform.engines.oidc import CONSOLE_CLIENT, Oidc
from modelog_platform.identity.oidc import KeySet
from modelog_platform.settings import EngineEndpoints, LocalStack
from registrar.console.oidc import (
    ClientConfig,
    OidcClient,
    PendingSignIn,
    SignInRefused,
    config_from_settings,
    verify_id_token,
)
from registrar.settings import RegistrarSettings

pytestmark = pytest.mark.engines

OIDC = Oidc()
# Beside the session stack's provider (tests/conftest.py), which may run too.
PORT = 21445 + int(os.environ.get("MODELOG_TEST_PORT_SHIFT", "0"))


@pytest.fixture(scope="module")
def provider() -> Iterator[Layout]:
    home = Path(tempfile.mkdtemp(prefix="modelog-oidc-test-")) / "home"
    lay = Layout(EngineEndpoints(), LocalStack(home=home, oidc_port=PORT), print)
    try:
        _, pid = OIDC.ensure_started(lay)
        OIDC.wait_ready(lay, pid)
        OIDC.provision(lay)
        yield lay
    finally:
        OIDC.stop(lay)


@pytest.fixture(scope="module")
def console_config(provider: Layout) -> ClientConfig:
    """The console's client as the registrar would make it from what the stack gives it."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in OIDC.service_env(provider, "registrar").items():
            env.setenv(name, value)
        config = config_from_settings(RegistrarSettings())
    assert config is not None
    return config


@dataclass
class Return:
    """Where the provider sent the browser back to, and with what."""

    url: str
    params: dict[str, str]


async def sign_in_as(authorization_url: str, redirect_uri: str, username: str, password: str) -> Return:
    """A browser: follow the provider's redirects, fill its login form, stop at the console's callback."""
    async with httpx.AsyncClient(timeout=30) as browser:
        back = await follow(browser, await submit_login(browser, authorization_url, redirect_uri, username, password),
                            redirect_uri)
        assert isinstance(back, Return), (back.status_code, back.text[:500])
        return back


async def submit_login(browser: httpx.AsyncClient, authorization_url: str, redirect_uri: str, username: str,
                       password: str) -> httpx.Response:
    """Open the authorization URL, find the provider's login form, post it; the provider's answer."""
    page = await follow(browser, await browser.get(authorization_url), redirect_uri)
    assert isinstance(page, httpx.Response) and page.status_code == 200, page
    form = re.search(r'<form method="post" action="([^"]+)">', page.text)
    challenge = re.search(r'name="login_challenge" value="([^"]+)"', page.text)
    assert form and challenge and 'name="password"' in page.text, page.text
    return await browser.post(urljoin(str(page.url), form.group(1)), data={
        "login_challenge": challenge.group(1), "username": username, "password": password})


async def follow(browser: httpx.AsyncClient, answer: httpx.Response, redirect_uri: str) -> httpx.Response | Return:
    for _ in range(10):
        if not answer.is_redirect:
            return answer
        location = urljoin(str(answer.url), answer.headers["location"])
        if location.startswith(redirect_uri + "?"):
            return Return(location, dict(parse_qsl(urlsplit(location).query)))
        answer = await browser.get(location)
    raise AssertionError("the provider redirected more than ten times")


def password(provider: Layout, username: str) -> str:
    return OIDC.password_file(provider, username).read_text().strip()


async def test_each_person_of_the_story_signs_in_through_the_providers_form_with_their_role(provider, console_config):
    async with httpx.AsyncClient(timeout=30) as http:
        client = OidcClient(console_config, http)
        for username, role in {"alice": "publisher", "bob": "approver", "carol": "operator",
                               "dave": "auditor"}.items():
            url, pending = await client.begin()
            back = await sign_in_as(url, console_config.redirect_uri, username, password(provider, username))
            assert back.params["state"] == pending.state and "code" in back.params
            identity = await client.finish(pending, back.params)
            # alice's other group (data-science) is another system's: no modelog role.
            assert (identity.subject, identity.roles, identity.grants) == (username, (role,), ())
            assert identity.issuer == OIDC.issuer(provider) == console_config.issuer
            assert identity.token_id and identity.expires_at.timestamp() > time.time()


async def test_a_wrong_password_gets_the_form_again_and_no_code(provider, console_config):
    async with httpx.AsyncClient(timeout=30) as http:
        url, _ = await OidcClient(console_config, http).begin()
    async with httpx.AsyncClient(timeout=30) as browser:
        answer = await submit_login(browser, url, console_config.redirect_uri, "bob", password(provider, "bob") + "x")
    assert answer.status_code == 401 and not answer.is_redirect
    assert "Unknown user name or wrong password" in answer.text and 'name="password"' in answer.text


async def test_a_return_for_another_sign_in_is_refused_by_its_state(provider, console_config):
    async with httpx.AsyncClient(timeout=30) as http:
        client = OidcClient(console_config, http)
        url, attackers = await client.begin()
        back = await sign_in_as(url, console_config.redirect_uri, "carol", password(provider, "carol"))
        # Someone else's callback, opened in a browser that started a sign-in of its own.
        _, victims = await client.begin()
        with pytest.raises(SignInRefused) as refusal:
            await client.finish(victims, back.params)
        assert refusal.value.code == "state_mismatch"
        assert (await client.finish(attackers, back.params)).subject == "carol"  # the code was never spent


async def test_a_code_works_once(provider, console_config):
    async with httpx.AsyncClient(timeout=30) as http:
        client = OidcClient(console_config, http)
        url, pending = await client.begin()
        back = await sign_in_as(url, console_config.redirect_uri, "bob", password(provider, "bob"))
        assert (await client.finish(pending, back.params)).subject == "bob"
        with pytest.raises(SignInRefused) as refusal:
            await client.finish(pending, back.params)
        assert refusal.value.code == "code_refused" and "invalid_grant" in str(refusal.value)


async def test_a_code_without_its_pkce_verifier_is_refused_by_the_provider(provider, console_config):
    async with httpx.AsyncClient(timeout=30) as http:
        client = OidcClient(console_config, http)
        url, pending = await client.begin()
        back = await sign_in_as(url, console_config.redirect_uri, "dave", password(provider, "dave"))
        stolen = PendingSignIn(pending.state, pending.nonce, code_verifier="x" * 64)
        with pytest.raises(SignInRefused) as refusal:
            await client.finish(stolen, back.params)
        assert refusal.value.code == "code_refused"


async def test_an_id_token_for_another_client_is_refused_by_the_console(provider, console_config):
    """Another application of the same issuer signs bob in; its ID token, shown to the console, proves nothing."""
    other = replace(console_config, client_id="another-app", client_secret=None,
                    redirect_uri="http://127.0.0.1:9/another-app/callback")
    with OIDC.admin(provider) as admin:
        admin.delete("/admin/clients/another-app")
        made = admin.post("/admin/clients", json={
            "client_id": "another-app", "grant_types": ["authorization_code"], "response_types": ["code"],
            "scope": "openid profile email", "redirect_uris": [other.redirect_uri],
            "token_endpoint_auth_method": "none"})
        assert made.status_code == 201, made.text
    async with httpx.AsyncClient(timeout=30) as http:
        others = OidcClient(other, http)
        url, pending = await others.begin()
        back = await sign_in_as(url, other.redirect_uri, "bob", password(provider, "bob"))
        metadata = await others.metadata()
        id_token = await others.exchange(metadata, back.params["code"], pending)
        keys = KeySet.from_document((await http.get(metadata.jwks_uri)).json())
    assert verify_id_token(id_token, keys, issuer=metadata.issuer, client_id="another-app", nonce=pending.nonce,
                           now=time.time())["sub"] == "bob"  # a good token, for its own client
    with pytest.raises(SignInRefused) as refusal:
        verify_id_token(id_token, keys, issuer=metadata.issuer, client_id=CONSOLE_CLIENT, nonce=pending.nonce,
                        now=time.time())
    assert refusal.value.code == "id_token_invalid" and "another client" in str(refusal.value)


def test_a_second_start_finds_the_provider_running_and_a_restart_keeps_its_client(provider, console_config):
    assert OIDC.ensure_started(provider)[0] == "already running"
    OIDC.stop(provider)
    state, pid = OIDC.ensure_started(provider)
    assert state == "started"
    OIDC.wait_ready(provider, pid)
    with OIDC.admin(provider) as admin:
        kept = admin.get(f"/admin/clients/{CONSOLE_CLIENT}")
    assert kept.status_code == 200 and kept.json()["redirect_uris"] == [console_config.redirect_uri]

"""No credential of any engine shows in a log line, an error body or a /readyz answer.

Runs after the rest of the session's engine tests (pytest takes tests/security
after tests/docs, e2e, fault and integration), so the logs it scans are those
of the whole run: every engine's and every service's, including the services
SIGKILLed and restarted mid-burst. Each secret the local stack made (Kafka and
PostgreSQL passwords, S3 secret keys, private keys) is looked for verbatim.
"""

import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import bearer

pytestmark = pytest.mark.engines

SERVICES = ("registrar", "promoter", "projector", "auditor")


def pem_body_tail(text: str) -> str:
    """The end of a PEM private key's base64: key material, not the ASN.1 header
    every key of its kind starts with."""
    body = "".join(line for line in text.splitlines() if not line.startswith("-----"))
    return body.rstrip("=")[-40:]


def secret_values(home: Path) -> dict[str, str]:
    """Every secret under the stack home, by the file it is kept in."""
    found = {}
    for path in (home / "secrets").rglob("*"):
        if path.is_file() and path.suffix == ".password":
            found[str(path.relative_to(home))] = path.read_text().strip()
        elif path.is_file() and path.suffix == ".key":
            found[str(path.relative_to(home))] = pem_body_tail(path.read_text())
    for pair in ("identity", "log-writer", "seals"):
        private = home / pair / "private.pem"
        if private.exists():
            found[str(private.relative_to(home))] = pem_body_tail(private.read_text())
    return found


def test_the_stack_has_secrets_to_look_for(stack):
    secrets = secret_values(Path(os.environ["MODELOG_HOME"]))
    engines = {name.split("/")[1] for name in secrets if name.startswith("secrets/")}
    assert {"kafka", "postgres"} <= engines, sorted(secrets)
    assert all(len(value) >= 16 for value in secrets.values())


def test_no_secret_is_in_a_log_an_error_body_or_a_readiness_answer(stack):
    home = Path(os.environ["MODELOG_HOME"])
    secrets = secret_values(home)
    answers = []
    for service in SERVICES:
        answers.append(httpx.get(f"{stack.url(service)}/readyz", timeout=10).text)
        answers.append(httpx.get(f"{stack.url(service)}/v1/nothing-here", timeout=10).text)
    answers.append(httpx.post(f"{stack.url('registrar')}/v1/models", json={"name": 3}, timeout=10,
                              headers=bearer("ci-pipeline", "publisher")).text)
    answers.append(httpx.get(f"{stack.url('projector')}/v1/models", timeout=10,
                             headers={"Authorization": "Bearer not-a-token"}).text)
    texts = {f"answer {i}": text for i, text in enumerate(answers)}
    logs = sorted((home / "logs").glob("*.log"))
    assert logs, f"no logs under {home / 'logs'}"
    texts.update({str(log.relative_to(home)): log.read_text(errors="replace") for log in logs})
    leaks = {(where, kept_in) for where, text in texts.items()
             for kept_in, secret in secrets.items() if secret in text}
    assert leaks == set()

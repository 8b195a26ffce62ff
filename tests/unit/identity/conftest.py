"""What the identity tests share: a development issuer of their own and a clock they move."""

import pytest

from modelog_platform.identity.dev import DevIssuer
from modelog_platform.identity.settings import IdentitySettings


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def issuer(tmp_path):
    return DevIssuer(tmp_path, IdentitySettings())


@pytest.fixture
def clock():
    return Clock()

"""The direct EdDSA check accepts only what PyJWT accepts, with the same claims;
whatever it does not take is left to PyJWT, which still refuses it by name."""

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelog_platform.identity.tokens import InvalidToken, claims_for, ed25519_claims, sign


@pytest.fixture
def verifier(issuer):
    return issuer.verifier()


def direct(verifier, token):
    return ed25519_claims(token, verifier.keys.key_for(token), verifier.issuer, verifier.audience)


def claims(verifier, **changes):
    made = claims_for(issuer=verifier.issuer, audience=verifier.audience, subject="alice", roles=["publisher"])
    return {**made, **changes}


def segment(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_a_dev_token_is_checked_directly_into_the_claims_pyjwt_finds(issuer, verifier):
    _, token = issuer.issue("alice", ["publisher"], grants=["fraud-*"])
    found = direct(verifier, token)
    assert found is not None
    assert found == verifier.library_claims(token, verifier.keys.key_for(token))


def test_an_audience_list_naming_ours_is_taken_directly(issuer, verifier):
    token = sign(claims(verifier, aud=["other", verifier.audience]), issuer.signing_key())
    assert direct(verifier, token) is not None
    assert verifier.verify(token).subject == "alice"


@pytest.mark.parametrize("changes, refusal", [
    ({"iss": "https://idp.example.com"}, "issuer"),
    ({"aud": "another-audience"}, "audience"),
    ({"aud": ["another-audience"]}, "audience"),
    ({"jti": None}, "'jti'"),
    ({"sub": 7}, "token refused"),
])
def test_claims_it_does_not_take_are_refused_by_pyjwt(issuer, verifier, changes, refusal):
    token = sign(claims(verifier, **changes), issuer.signing_key())
    assert direct(verifier, token) is None
    with pytest.raises(InvalidToken, match=refusal):
        verifier.verify(token)


def test_a_forged_signature_is_not_taken_and_is_refused(verifier):
    token = sign(claims(verifier), Ed25519PrivateKey.generate())
    assert direct(verifier, token) is None
    with pytest.raises(InvalidToken, match="signature does not verify"):
        verifier.verify(token)


def test_a_changed_payload_under_the_old_signature_is_refused(issuer, verifier):
    header, _, signature = sign(claims(verifier), issuer.signing_key()).split(".")
    token = ".".join([header, segment(claims(verifier, sub="mallory")), signature])
    assert direct(verifier, token) is None
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_padded_or_non_canonical_base64_is_left_to_pyjwt(issuer, verifier):
    token = sign(claims(verifier), issuer.signing_key())
    padded = token + "=="  # a 64-byte signature's padding, which PyJWT tolerates
    assert direct(verifier, padded) is None
    assert verifier.verify(padded).subject == "alice"
    assert direct(verifier, token + ".extra") is None
    assert direct(verifier, token.replace(".", "!.", 1)) is None


def test_a_header_beyond_alg_typ_and_kid_is_left_to_pyjwt(issuer, verifier):
    key = issuer.signing_key()
    critical = jwt.encode(claims(verifier), key, algorithm="EdDSA", headers={"crit": ["exp"]})
    assert direct(verifier, critical) is None
    with pytest.raises(InvalidToken):
        verifier.verify(critical)
    with_kid = jwt.encode(claims(verifier), key, algorithm="EdDSA", headers={"kid": "k1"})
    assert direct(verifier, with_kid) is not None
    signing_input = f"{segment({'alg': 'EdDSA', 'kid': 7})}.{segment(claims(verifier))}"
    signature = base64.urlsafe_b64encode(key.sign(signing_input.encode())).rstrip(b"=").decode()
    odd_kid = f"{signing_input}.{signature}"
    assert direct(verifier, odd_kid) is None
    with pytest.raises(InvalidToken):
        verifier.verify(odd_kid)


def test_an_unsigned_token_is_never_taken(verifier):
    token = jwt.encode(claims(verifier), None, algorithm="none")
    assert direct(verifier, token) is None
    with pytest.raises(InvalidToken):
        verifier.verify(token)

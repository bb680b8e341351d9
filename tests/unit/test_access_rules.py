"""Pure access rules: roles from Clerk claims, origins, sender-proof tokens and the deployment's own domain."""
from __future__ import annotations

import pytest

from outreach.http.auth import origin_of, role_of
from outreach.runtime import errors, sender_proof

SECRET = "server-secret"


@pytest.mark.parametrize("claims, role", [
    ({"o": {"id": "org_1", "rol": "admin"}}, "admin"),
    ({"o": {"id": "org_1", "rol": "member"}}, "member"),
    ({"o": {"id": "org_1", "rol": "billing"}}, "member"),
    ({"o": {"id": "org_1"}}, "member"),
    ({"org_id": "org_1", "org_role": "org:admin"}, "admin"),
    ({"org_id": "org_1", "org_role": "org:member"}, "member"),
    ({"org_id": "org_1", "org_role": "admin"}, "admin"),
    ({"org_id": "org_1"}, "member"),
    ({"o": {"id": "org_1", "rol": "member"}, "org_role": "org:admin"}, "member"),  # v2 wins, as for the org id
    ({}, "admin"),  # no active organization: the user's personal one
    ({"o": {"rol": "member"}}, "admin"),  # an `o` without an id names no organization
])
def test_role_of(claims, role):
    assert role_of({"sub": "user_1", **claims}) == role


@pytest.mark.parametrize("value, origin", [
    ("https://App.Example", "https://app.example"),
    ("https://app.example/path?q=1#x", "https://app.example"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("null", None), ("", None), (None, None), ("app.example", None), ("javascript:alert(1)", None),
    ("ftp://app.example", None),
])
def test_origin_of(value, origin):
    assert origin_of(value) == origin


def test_a_token_names_its_org_and_address_until_it_expires():
    token = sender_proof.sign_token(SECRET, "org-1", "Sales@Acme.io", expires_at=1000)
    assert sender_proof.read_token(SECRET, token, now=999) == ("org-1", "sales@acme.io")
    assert sender_proof.read_token(SECRET, token, now=1000) == ("org-1", "sales@acme.io")
    with pytest.raises(errors.Invalid, match="invalid or has expired"):
        sender_proof.read_token(SECRET, token, now=1001)


@pytest.mark.parametrize("mangle", [
    lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),
    lambda token: sender_proof.encode(b"org-2|sales@acme.io|9999") + "." + token.split(".")[1],
    lambda token: token.split(".")[0],
    lambda token: "." + token.split(".")[1],
    lambda token: "",
    lambda token: "ü.ü",
])
def test_a_tampered_token_is_refused(mangle):
    token = sender_proof.sign_token(SECRET, "org-1", "sales@acme.io", expires_at=9999)
    with pytest.raises(errors.Invalid):
        sender_proof.read_token(SECRET, mangle(token), now=0)


def test_a_token_from_another_secret_is_refused():
    token = sender_proof.sign_token("other", "org-1", "sales@acme.io", expires_at=9999)
    with pytest.raises(errors.Invalid):
        sender_proof.read_token(SECRET, token, now=0)


@pytest.mark.parametrize("address, email_from, own", [
    ("sales@outreach.io", "Outreach <noreply@outreach.io>", True),
    ("sales@OUTREACH.io", "noreply@outreach.io", True),
    ("sales@mail.outreach.io", "noreply@outreach.io", True),
    ("sales@notoutreach.io", "noreply@outreach.io", False),
    ("sales@outreach.io.evil.test", "noreply@outreach.io", False),
    ("sales@outreach.io", None, False),
    ("sales@outreach.io", "not an address", False),
])
def test_the_deployments_own_domain(address, email_from, own):
    assert sender_proof.is_deployment_address(address, email_from) is own

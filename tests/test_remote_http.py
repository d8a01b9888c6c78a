"""Pure pieces of the Hub client: Link headers and failure messages (waits: test_hubhttp)."""

from __future__ import annotations

import pytest

from wandown.hubhttp import messages
from wandown.remote.client import _next_link

EP = "https://huggingface.co"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            '<https://h/api/models/a/b/tree/c?cursor=x>; rel="next"',
            "https://h/api/models/a/b/tree/c?cursor=x",
        ),
        ('<https://h/p1>; rel="prev", <https://h/p3>; rel="next"', "https://h/p3"),
        ("</api/x?cursor=2>; rel=next", "https://h/api/x?cursor=2"),
        ('<https://h/p1>; rel="prev"', None),
        (None, None),
    ],
)
def test_next_link(header, expected):
    assert _next_link(header, "https://h/api/start") == expected


@pytest.mark.parametrize(
    "header",
    ['<http://[oops/x>; rel="next"', '<//[::1/x>; rel="next"', '<http://h:port/x>; rel="next"'],
)
def test_malformed_next_link_is_an_unexpected_answer(header):
    with pytest.raises(messages.HubError) as raised:
        _next_link(header, "https://h/api/start")
    assert raised.value.kind == messages.UNEXPECTED
    assert raised.value.message == (
        "Unexpected answer from https://h/api/start: the Link header names a malformed next page."
    )


def failure(status, headers=None, token_sent=False, path=None, revision="main"):
    return messages.http_failure(
        status,
        headers or {},
        endpoint=EP,
        repo="o/r",
        revision=revision,
        path=path,
        token_sent=token_sent,
    )


@pytest.mark.parametrize(
    ("status", "headers", "token_sent", "kind"),
    [
        (401, {"X-Error-Code": "GatedRepo"}, False, messages.GATED),
        (403, {"X-Error-Code": "GatedRepo"}, True, messages.GATED),
        (
            401,
            {"X-Error-Message": "Invalid credentials in Authorization header"},
            True,
            messages.BAD_TOKEN,
        ),
        (401, {"X-Error-Code": "RepoNotFound"}, False, messages.REPO_NOT_FOUND),
        (404, {"X-Error-Code": "RepoNotFound"}, True, messages.REPO_NOT_FOUND),
        (401, {}, False, messages.REPO_NOT_FOUND),
        (404, {"X-Error-Code": "RevisionNotFound"}, False, messages.REVISION_NOT_FOUND),
        (404, {"X-Error-Code": "EntryNotFound"}, False, messages.FILE_NOT_FOUND),
        (403, {}, True, messages.FORBIDDEN),
        (500, {}, False, messages.SERVER),
        (418, {}, False, messages.UNEXPECTED),
    ],
)
def test_failure_kinds(status, headers, token_sent, kind):
    assert failure(status, headers, token_sent).kind == kind


def test_gated_message_without_a_token():
    message = failure(401, {"X-Error-Code": "GatedRepo"}).message
    assert message == (
        "o/r is gated: accept its licence at https://huggingface.co/o/r, then set a token "
        "with HF_TOKEN=... or `hf auth login`."
    )


def test_file_not_found_names_the_path_and_revision():
    message = failure(404, {"X-Error-Code": "EntryNotFound"}, path="x/y.json").message
    assert message == "File 'x/y.json' not found in o/r at revision 'main'."


def test_rate_limit_message_after_retries():
    assert messages.gave_up(429, 31.2, 55.0).message == (
        "The Hub is rate limiting requests (HTTP 429) after 31 s of retries; try again in 55 s."
    )

"""The one HTTP layer's rules: server waits, the retry policy, origins, headers, redirects."""

from __future__ import annotations

import math
import threading

import pytest

from wandown.hubhttp.retry import UNLIMITED, RetryPolicy, server_wait
from wandown.hubhttp.urls import (
    MAX_REDIRECTS,
    RedirectRefused,
    redirect_target,
    request_headers,
    resolve_parts,
)
from wandown.huburl import origin

NOW = 60.0


# One answer per sample header. The engine and the metadata client used to read five of these
# differently (1.5, 99999, reset=12, which header wins, the 300 s cap); now one parser does.
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"Retry-After": "1.5"}, 1.5),  # not RFC delay-seconds, but its meaning is plain
        ({"Retry-After": "99999"}, 99999.0),  # what was asked; the policy refuses to wait it
        ({"Retry-After": "Thu, 01 Jan 1970 00:01:40 GMT"}, 40.0),  # HTTP date, against NOW
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:10 GMT"}, 0.0),  # a date already past
        ({"ratelimit": '"api";r=0;t=55'}, 55.0),  # the Hub's RateLimit t=
        ({"RateLimit": "limit=100, remaining=0, reset=12"}, 12.0),  # the older draft's reset=
        ({"ratelimit": '"resolvers";r=0;t=7', "retry-after": "100"}, 7.0),  # RateLimit wins
        ({"RateLimit": "garbage", "Retry-After": "9"}, 9.0),  # unreadable RateLimit: Retry-After
        ({"Retry-After": "-5"}, None),
        ({"RateLimit": '"api";r=0;t=-3'}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": " "}, None),
        ({}, None),
    ],
)
def test_server_wait(headers, expected):
    assert server_wait(headers, now=NOW) == expected


def test_backoff_grows_and_is_capped():
    policy = RetryPolicy(first_backoff=0.5, max_backoff=4.0)
    assert [policy.backoff(attempt) for attempt in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]


def test_backoff_jitter_spreads_a_quarter_either_way():
    policy = RetryPolicy(first_backoff=0.5, max_backoff=4.0)
    assert policy.backoff(1, jitter=0.0) == 0.375
    assert policy.backoff(1, jitter=0.999) == pytest.approx(0.62475)
    assert policy.backoff(9, jitter=0.0) == 3.0


def test_the_policy_waits_what_is_asked_within_its_limits():
    listing = RetryPolicy(budget=60.0, jitter=lambda: 0.5)
    downloads = RetryPolicy(max_attempts=9, budget=UNLIMITED, jitter=lambda: 0.5)
    assert listing.next_wait(1, 0.0, None) == 0.5
    assert listing.next_wait(1, 0.0, 7.0) == 7.0
    assert listing.next_wait(1, 55.0, 7.0) is None  # beyond the time budget
    assert listing.next_wait(8, 0.0, 1.0) is None  # the last attempt
    assert downloads.next_wait(1, 0.0, 300.0) == 300.0
    assert downloads.next_wait(1, 0.0, 99999.0) is None  # never sleep longer than 300 s
    assert downloads.next_wait(8, 1e9, None) is not None


def test_a_stoppable_pause_ends_when_asked_and_sleeps_on_the_policy_clock():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds, cancel):
        slept.append(seconds)
        now[0] += seconds

    policy = RetryPolicy(clock=lambda: now[0], sleep=sleep)
    policy.pause(1.0, threading.Event())
    assert slept == [1.0]
    slept.clear()
    policy.pause(1.0, threading.Event(), stopping=lambda: len(slept) >= 3)
    assert len(slept) == 3 and math.isclose(sum(slept), 0.3)


def test_one_origin_rule():
    assert origin("HTTP://Hub:80/x") == origin("http://hub/")
    assert origin("https://user@hub.example/x") == origin("https://hub.example:443")
    assert origin("https://hub.example/x") != origin("http://hub.example/x")


def test_credentials_only_to_the_home_origin():
    token = {"Authorization": "Bearer t", "Cookie": "c=1"}
    same = request_headers("https://hub.example:443/y", "https://hub.example/x", token)
    other = request_headers("https://cdn.example/y", "https://hub.example/x", token)
    broken = request_headers("http://[oops/y", "http://[oops/x", token)
    assert same["Authorization"] == "Bearer t" and same["User-Agent"].startswith("wandown/")
    assert "Authorization" not in other and "Cookie" not in other
    assert "Authorization" not in broken
    lower = request_headers("https://h/x", "https://h", {"user-agent": "other"})
    assert list(lower) == ["user-agent"]  # one header, not two spellings of it


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("file:///etc/passwd", "which is not an http(s) URL; not following it"),
        ("ftp://127.0.0.1/x", "which is not an http(s) URL"),
        ("https:///no-host", "which names no host"),
        ("http://[oops/x", "the redirect location is malformed"),
        (None, "nowhere"),
    ],
)
def test_redirects_off_http_are_refused(location, why):
    with pytest.raises(RedirectRefused) as refused:
        redirect_target("https://hub.example/a/b/resolve/main/c", location)
    assert why in str(refused.value)


def test_a_relative_redirect_is_followed():
    assert redirect_target("https://h/a/b", "/c?d=1") == "https://h/c?d=1"
    assert MAX_REDIRECTS == 10


def test_resolve_parts_name_the_repo_for_messages():
    assert resolve_parts("https://h/o/r/resolve/main/a/b%20c.bin") == (
        "https://h",
        "o/r",
        "main",
        "a/b c.bin",
    )
    assert resolve_parts("https://h/mirror/o/r/resolve/abc/x")[:2] == ("https://h/mirror", "o/r")
    assert resolve_parts("https://h/gpt2/resolve/main/x")[1] == "gpt2"
    assert resolve_parts("https://h/api/models/o/r") is None

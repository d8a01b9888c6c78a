"""Endpoint, token and offline settings, and catalog URL parsing."""

from __future__ import annotations

import pytest

from wandown import catalog
from wandown.errors import ConfigError
from wandown.huburl import NO_ORIGIN, origin
from wandown.remote import FileRef, hub_settings, parse_hub_url
from wandown.remote.settings import token_file


def test_defaults_when_nothing_is_set(tmp_path):
    settings = hub_settings({"HOME": str(tmp_path), "HF_HOME": str(tmp_path / "hf")})
    assert settings.endpoint == "https://huggingface.co"
    assert settings.token is None
    assert settings.offline is False


def test_hf_token_wins_over_the_token_file(tmp_path):
    (tmp_path / "token").write_text("hf_from_file\n")
    env = {"HF_HOME": str(tmp_path), "HF_TOKEN": "hf_from_env"}
    assert hub_settings(env).token == "hf_from_env"
    assert hub_settings(env).token_source == "HF_TOKEN"


def test_token_file_under_hf_home(tmp_path):
    (tmp_path / "token").write_text("  hf_from_file\n")
    settings = hub_settings({"HF_HOME": str(tmp_path)})
    assert settings.token == "hf_from_file"
    assert settings.token_source == str(tmp_path / "token")


def test_token_file_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert token_file({}) == tmp_path / ".cache" / "huggingface" / "token"
    assert token_file({"XDG_CACHE_HOME": "/x"}).as_posix() == "/x/huggingface/token"
    assert token_file({"HF_TOKEN_PATH": "/t/tok"}).as_posix() == "/t/tok"


def test_empty_token_file_means_no_token(tmp_path):
    (tmp_path / "token").write_text("\n")
    assert hub_settings({"HF_HOME": str(tmp_path)}).token is None


def test_token_never_shows_in_repr(tmp_path):
    settings = hub_settings({"HF_TOKEN": "hf_secret_value", "HF_HOME": str(tmp_path)})
    assert "hf_secret_value" not in repr(settings)
    assert "hf_secret_value" not in str(settings)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on"])
def test_offline_from_env(value, tmp_path):
    assert hub_settings({"HF_HUB_OFFLINE": value, "HF_HOME": str(tmp_path)}).offline


@pytest.mark.parametrize("value", ["0", "false", "", "no"])
def test_not_offline(value, tmp_path):
    assert not hub_settings({"HF_HUB_OFFLINE": value, "HF_HOME": str(tmp_path)}).offline


def test_endpoint_from_env_loses_trailing_slash(tmp_path):
    settings = hub_settings({"HF_ENDPOINT": "http://127.0.0.1:8080/", "HF_HOME": str(tmp_path)})
    assert settings.endpoint == "http://127.0.0.1:8080"


def test_origin_fills_default_ports():
    assert origin("https://huggingface.co/x") == ("https", "huggingface.co", 443)
    assert origin("https://HuggingFace.co:443/y") == origin("https://huggingface.co")
    assert origin("http://127.0.0.1:80/") == origin("http://127.0.0.1")
    assert origin("http://127.0.0.1:8000") != origin("http://127.0.0.1:8001")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://huggingface.co/DeepBeepMeep/Wan2.1/resolve/main/ckpts/model.safetensors",
            FileRef("DeepBeepMeep/Wan2.1", "main", "ckpts/model.safetensors"),
        ),
        (
            "https://huggingface.co/gpt2/resolve/main/config.json",
            FileRef("gpt2", "main", "config.json"),
        ),
        (
            "https://huggingface.co/o/r/resolve/refs%2Fpr%2F1/a%20b.json?download=true",
            FileRef("o/r", "refs/pr/1", "a b.json"),
        ),
        ("https://huggingface.co/datasets/o/r/resolve/main/x.json", None),
        ("https://huggingface.co/o/r/blob/main/x.json", None),
        ("https://example.com/o/r/resolve/main/x.json", None),
        ("https://huggingface.co/o/r/resolve/main/", None),
        ("https://huggingface.co/o/r/resolve/main/../x", None),
        # Encoded separators must not turn into a path outside the models folder.
        ("https://huggingface.co/o/r/resolve/main/%2Fetc%2Fpasswd", None),
        ("https://huggingface.co/o/r/resolve/main/a/%2E%2E/%2E%2E/x", None),
        ("https://huggingface.co/o/r/resolve/main/a%2F..%2F..%2Fx", None),
        ("https://huggingface.co/o/r/resolve/main/..%5C..%5Cx", None),
        ("https://huggingface.co/o/r/resolve/main/a//b", None),
        ("https://huggingface.co/o/r/resolve/main/./a", None),
        ("https://huggingface.co/o/r/resolve/main/a/", None),
        ("https://huggingface.co/o/r/resolve/main/a%00b", None),
        ("http://[oops/o/r/resolve/main/x.json", None),
        ("https://huggingface.co:notaport/o/r/resolve/main/x.json", None),
        ("not a url", None),
    ],
)
def test_parse_hub_url(url, expected):
    assert parse_hub_url(url) == expected
    # The catalog reads definition URLs by the same rule: a path it would refuse here (an
    # encoded "..", a dataset) is never a catalog file with a repo either.
    as_tuple = (expected.repo, expected.revision, expected.path) if expected else None
    assert catalog.parse_hub_url(url) == as_tuple


def test_parse_hub_url_on_a_mirror_endpoint():
    endpoint = "http://127.0.0.1:9999/mirror"
    url = "http://127.0.0.1:9999/mirror/o/r/resolve/v1.0/x/y.bin"
    assert parse_hub_url(url, endpoint) == FileRef("o/r", "v1.0", "x/y.bin")
    # huggingface.co URLs stay valid when a mirror is set: they are fetched from the mirror.
    assert parse_hub_url("https://huggingface.co/o/r/resolve/main/a", endpoint) == FileRef(
        "o/r", "main", "a"
    )


def test_parse_hub_url_with_a_malformed_endpoint_still_knows_huggingface_co():
    url = "https://huggingface.co/o/r/resolve/main/a"
    assert parse_hub_url(url, "http://[::1") == FileRef("o/r", "main", "a")
    assert parse_hub_url("http://[::1/o/r/resolve/main/a", "http://[::1") is None


def test_origin_of_a_malformed_url_matches_no_real_url():
    assert origin("http://[oops/x") == NO_ORIGIN
    assert origin("http://[oops/x") != origin("http://127.0.0.1")


@pytest.mark.parametrize(
    "value",
    [
        "huggingface.co",
        "ftp://mirror",
        "http://",
        "http://[::1",
        "http://[oops/x",
        "http://127.0.0.1:notaport",
        "http://127.0.0.1:99999",
    ],
)
def test_bad_endpoint_is_a_config_error(value):
    with pytest.raises(ConfigError, match="HF_ENDPOINT"):
        hub_settings({"HF_ENDPOINT": value, "HF_HOME": "/nonexistent"})


@pytest.mark.parametrize(
    "value",
    [
        "http://user:s3cret@127.0.0.1:8080",
        "https://s3cret@mirror.example/hf",
        "http://user:s3cret@[::1",
        "user:s3cret@mirror.example",
    ],
)
def test_endpoint_with_a_password_is_refused_without_showing_it(value):
    with pytest.raises(ConfigError) as raised:
        hub_settings({"HF_ENDPOINT": value, "HF_HOME": "/nonexistent"})
    assert str(raised.value) == "HF_ENDPOINT must not contain a user name or password."


def test_endpoint_may_have_an_at_sign_in_its_path(tmp_path):
    settings = hub_settings({"HF_ENDPOINT": "http://127.0.0.1:8080/@mirror", "HF_HOME": "/x"})
    assert settings.endpoint == "http://127.0.0.1:8080/@mirror"


@pytest.mark.parametrize("value", ["http://mirror/?key=s3cret", "http://mirror/#s3cret"])
def test_endpoint_with_a_query_or_fragment_is_refused_without_showing_it(value):
    with pytest.raises(ConfigError, match="HF_ENDPOINT") as raised:
        hub_settings({"HF_ENDPOINT": value, "HF_HOME": "/nonexistent"})
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize("variable", ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"])
@pytest.mark.parametrize(
    "token", ["hf_SECRET1\nhf_SECRET2", "hf_SECRET1\rX", "hf_SECRET1\x00", "hf_SECRET1\u00e9"]
)
def test_token_that_http_cannot_carry_is_refused_without_showing_it(tmp_path, variable, token):
    with pytest.raises(ConfigError) as raised:
        hub_settings({variable: token, "HF_HOME": str(tmp_path)})
    message = str(raised.value)
    assert message.startswith(f"{variable} holds a token with a line break")
    assert "SECRET" not in message


def test_token_file_that_http_cannot_carry_names_the_file(tmp_path):
    (tmp_path / "token").write_text("hf_SECRET1\nhf_SECRET2\n")
    with pytest.raises(ConfigError) as raised:
        hub_settings({"HF_HOME": str(tmp_path)})
    message = str(raised.value)
    assert message.startswith(f"The token file {tmp_path / 'token'} holds a token")
    assert "SECRET" not in message

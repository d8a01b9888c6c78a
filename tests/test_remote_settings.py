"""Endpoint, token and offline settings, and catalog URL parsing."""

from __future__ import annotations

import pytest

from wandown.errors import ConfigError
from wandown.remote import FileRef, hub_settings, parse_hub_url
from wandown.remote.settings import origin, token_file


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
        ("not a url", None),
    ],
)
def test_parse_hub_url(url, expected):
    assert parse_hub_url(url) == expected


def test_parse_hub_url_on_a_mirror_endpoint():
    endpoint = "http://127.0.0.1:9999/mirror"
    url = "http://127.0.0.1:9999/mirror/o/r/resolve/v1.0/x/y.bin"
    assert parse_hub_url(url, endpoint) == FileRef("o/r", "v1.0", "x/y.bin")
    # huggingface.co URLs stay valid when a mirror is set: they are fetched from the mirror.
    assert parse_hub_url("https://huggingface.co/o/r/resolve/main/a", endpoint) == FileRef(
        "o/r", "main", "a"
    )


@pytest.mark.parametrize("value", ["huggingface.co", "ftp://mirror", "http://"])
def test_bad_endpoint_is_a_config_error(value):
    with pytest.raises(ConfigError, match="HF_ENDPOINT"):
        hub_settings({"HF_ENDPOINT": value, "HF_HOME": "/nonexistent"})

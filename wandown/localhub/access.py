"""Who may read which repo: gated and private repos, and the tokens that open them.

The answers copy huggingface.co's, since huggingface_hub maps them to its exceptions:
anonymous access to a gated repo is 401 ``GatedRepo`` and to a private one 401 ``RepoNotFound``;
a valid token without access gets 403 ``GatedRepo`` or 404 ``RepoNotFound``; an unknown token
is 401 with the message "Invalid credentials in Authorization header" (and no error code).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from wandown.errors import ConfigError
from wandown.jsonfile import JSONFileError, read_json

CONFIG_NAME = ".localhub.json"
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


@dataclass(frozen=True)
class Denial:
    """An error answer: HTTP status, the Hub's X-Error-Code (or None) and its message."""

    status: int
    code: str | None
    message: str


REPO_NOT_FOUND = "Repository not found"
TOKEN_REQUIRED = (
    "This server needs a token: send Authorization: Bearer <token> "
    "(wandown and huggingface_hub send HF_TOKEN)"
)


def bearer_token(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header, if any."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class AccessPolicy:
    """Decide whether a request may see a repo.

    tokens maps each token to the repo ids it opens, or to "*" for all. When no tokens are
    configured, Authorization headers are ignored, so a client that carries its own real
    Hub token still works against a server that has no notion of tokens. With required, a
    request without a token is refused before anything else (``wandown --serve-token``).
    """

    def __init__(
        self,
        gated: Iterable[str] = (),
        private: Iterable[str] = (),
        tokens: Mapping[str, Iterable[str] | str] | None = None,
        required: bool = False,
    ) -> None:
        self.required = required
        self.gated = frozenset(gated)
        self.private = frozenset(private)
        self.tokens: dict[str, frozenset[str] | str] = {}
        for token, repos in (tokens or {}).items():
            self.tokens[token] = (
                "*" if repos == "*" else frozenset([repos] if isinstance(repos, str) else repos)
            )

    def token_denial(self, authorization: str | None) -> Denial | None:
        """Refuse a token the server does not know (only when tokens are configured)."""
        token = bearer_token(authorization)
        if token is None and self.required:
            return Denial(401, None, TOKEN_REQUIRED)
        if token is None or not self.tokens or token in self.tokens:
            return None
        return Denial(401, None, INVALID_CREDENTIALS)

    def known_token(self, authorization: str | None) -> str | None:
        """Return the request's token if the server knows it."""
        token = bearer_token(authorization)
        return token if token is not None and token in self.tokens else None

    def _opens(self, token: str | None, repo_id: str) -> bool:
        if token is None:
            return False
        repos = self.tokens[token]
        return repos == "*" or repo_id in repos

    def not_found(self, authorization: str | None) -> Denial:
        """The Hub's answer for a repo it will not admit to: 401 when anonymous, else 404."""
        status = 401 if self.known_token(authorization) is None else 404
        return Denial(status, "RepoNotFound", REPO_NOT_FOUND)

    def denial(self, repo_id: str, authorization: str | None, *, files: bool) -> Denial | None:
        """Return why this request may not read repo_id, or None if it may.

        files is True for file contents: a gated repo's metadata stays public, as on the Hub.
        """
        refused = self.token_denial(authorization)
        if refused is not None:
            return refused
        token = self.known_token(authorization)
        if repo_id in self.private and not self._opens(token, repo_id):
            return self.not_found(authorization)
        if files and repo_id in self.gated and not self._opens(token, repo_id):
            if token is None:
                return Denial(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You "
                    "must have access to it and be authenticated to access it. "
                    "Please log in.",
                )
            return Denial(
                403,
                "GatedRepo",
                f"Access to model {repo_id} is restricted and you are not in the authorized list.",
            )
        return None

    def gated_value(self, repo_id: str) -> str | bool:
        """Return model_info's ``gated`` field for repo_id."""
        return "manual" if repo_id in self.gated else False


class LocalHubConfig(TypedDict):
    """A ``.localhub.json``: LocalHub's gated, private and tokens keyword arguments."""

    gated: list[str]
    private: list[str]
    tokens: dict[str, list[str] | str]


def load_config(path: Path) -> LocalHubConfig:
    """Read a ``.localhub.json`` into LocalHub keyword arguments (gated, private, tokens)."""
    try:
        data = read_json(path)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    except JSONFileError as err:
        raise ConfigError(f"{path} is not valid JSON: {err.reason}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    unknown = set(data) - {"gated", "private", "tokens"}
    if unknown:
        raise ConfigError(
            f"{path}: unknown keys {', '.join(sorted(unknown))} (expected gated, private, tokens)"
        )
    lists: dict[str, list[str]] = {}
    for key in ("gated", "private"):
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{path}: {key!r} must be a list of repo ids")
        lists[key] = value
    tokens = data.get("tokens", {})
    if not isinstance(tokens, dict) or not all(
        v == "*" or (isinstance(v, list) and all(isinstance(r, str) for r in v))
        for v in tokens.values()
    ):
        raise ConfigError(f'{path}: "tokens" must map each token to a list of repo ids or "*"')
    return LocalHubConfig(gated=lists["gated"], private=lists["private"], tokens=tokens)

"""A language model behind any OpenAI-compatible chat-completions endpoint: Ollama, llama.cpp's server, vLLM,
LM Studio, OpenAI, Azure.

Nothing is sent anywhere unless one is configured (``ask --llm``, or ``$NEWSARCHIVE_LLM_URL``). The endpoint is the
operator's, so it may be on this machine or the local network; the request is bounded by one deadline, streaming
included. The API key (``$NEWSARCHIVE_LLM_API_KEY`` only, never a flag, so it stays out of shell histories and
process lists) goes in the Authorization header and nowhere else: it is taken out of anything the server says
before a message repeats it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from indexer import config
from indexer.errors import NewsarchiveError
from indexer.reading import fetch_policy, fetching

TIMEOUT = 120.0  # seconds an answer may take: a small model on a laptop's CPU writes a few words a second
MAX_TIMEOUT = 3600.0
MAX_REPLY_BYTES = 2_000_000
_ERROR_BYTES = 2000  # of an error's body, for its message


class GeneratorFailed(NewsarchiveError):
    """The endpoint gave no usable reply; ``reason`` says why, in a line (without the API key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Generator:
    """An OpenAI-compatible endpoint and the model to ask there.

    Args:
        url: The base URL as OpenAI clients take it, ending in ``/v1`` (``http://127.0.0.1:11434/v1``).
        model: The model's name at that endpoint.
        api_key: Sent as a bearer token, if any.
        timeout: Seconds a whole reply may take.
    """

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = TIMEOUT

    @classmethod
    def configured(
        cls, url: str | None = None, model: str | None = None, timeout: float | None = None
    ) -> Generator | None:
        """The generator given here or in the environment (``$NEWSARCHIVE_LLM_URL``, ``..._MODEL``,
        ``..._API_KEY``); ``None`` when no URL is set.

        Raises:
            NewsarchiveError: A URL without a model, a URL that is not http(s), or a timeout out of range.
        """
        url = url or os.environ.get(config.LLM_URL_ENV) or None
        if url is None:
            return None
        model = model or os.environ.get(config.LLM_MODEL_ENV) or None
        if not model:
            raise NewsarchiveError(f"a generator needs a model: --llm-model NAME, or ${config.LLM_MODEL_ENV}")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, UnicodeError) as error:
            raise NewsarchiveError(f"the generator's URL is not a URL ({error})") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise NewsarchiveError(f"the generator's URL must be http(s)://HOST/…/v1, not {fetch_policy.shown(url)!r}")
        timeout = TIMEOUT if timeout is None else timeout
        if not 0 < timeout <= MAX_TIMEOUT:
            raise NewsarchiveError(f"the generator's timeout must be between 0 and {MAX_TIMEOUT:g} seconds")
        return cls(url.rstrip("/"), model, os.environ.get(config.LLM_KEY_ENV) or None, timeout)

    def describe(self) -> str:
        """The model and where it runs, as a person may be shown them (no password, no key)."""
        return f"{self.model} at {fetch_policy.shown(self.url)}"

    @classmethod
    def configured_description(cls) -> str:
        """The generator the environment configures, as ``info`` shows it: described, or why there is none."""
        try:
            generator = cls.configured()
        except NewsarchiveError as error:
            return f"none: {error}"
        return generator.describe() if generator else "none: answers are quoted"

    def chat(
        self,
        messages: list[dict[str, str]],
        schema: dict[str, Any] | None = None,
        on_text: Callable[[str], None] | None = None,
        max_tokens: int = 1024,
    ) -> str:
        """The model's reply to ``messages``. With ``schema``, the reply is asked for as JSON of that shape:
        ``response_format`` ``json_schema`` (OpenAI, Ollama, vLLM, llama.cpp's server), else ``json_object`` with
        the schema (llama-cpp-python's server), else nothing, the prompt alone asking for it; each is tried when
        the server refused the one before. With ``on_text``, the reply is streamed and ``on_text`` gets the text
        so far as it grows.

        Raises:
            GeneratorFailed: Refused, timed out, an HTTP error, or a reply without a message.
        """
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
            "stream": on_text is not None,
        }
        formats = (
            [
                {"type": "json_schema", "json_schema": {"name": "reply", "strict": True, "schema": schema}},
                {"type": "json_object", "schema": schema},
            ]
            if schema is not None
            else []
        )
        for response_format in formats:
            try:
                return self._post({**body, "response_format": response_format}, on_text)
            except _SchemaRefused:
                continue
        return self._post(body, on_text)

    def _post(self, body: dict[str, Any], on_text: Callable[[str], None] | None) -> str:
        started = time.monotonic()
        deadline = started + self.timeout
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = f"{self.url}/chat/completions"
        try:
            with (
                fetching.new_client() as client,
                fetch_policy.hop(True, deadline),
                client.stream("POST", url, json=body, headers=headers, timeout=self.timeout) as response,
            ):
                if not response.is_success:
                    message = self._message(response)
                    # llama-cpp-python's server answers 500 to a response_format it does not take, and names it
                    refused = response.status_code in (400, 422) or "response_format" in message
                    if refused and "response_format" in body:
                        raise _SchemaRefused
                    raise GeneratorFailed(f"the endpoint answered HTTP {response.status_code}{message}")
                if body["stream"]:
                    return self._streamed(response, on_text)
                return _content(_json(b"".join(_capped(response))))
        except httpx.TimeoutException:
            raise GeneratorFailed(f"no complete reply within {self.timeout:g} s") from None
        except httpx.HTTPError as error:
            reason = self._scrubbed(str(error)) or type(error).__name__
            raise GeneratorFailed(f"cannot reach {fetch_policy.shown(self.url)}: {reason}") from None

    def _streamed(self, response: httpx.Response, on_text: Callable[[str], None] | None) -> str:
        """The text of a streamed reply (server-sent events). Its deadline is the hop's, which ends every read."""
        parts: list[str] = []
        for raw in _lines(_capped(response)):
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            try:
                delta = json.loads(data)["choices"][0].get("delta") or {}
            except (ValueError, RecursionError, KeyError, IndexError, TypeError, AttributeError):
                raise GeneratorFailed("the endpoint streamed something that is not a chat completion") from None
            if isinstance(delta.get("content"), str) and delta["content"]:
                parts.append(delta["content"])
                if on_text is not None:
                    on_text("".join(parts))
        return "".join(parts)

    def _message(self, response: httpx.Response) -> str:
        """What the server said about an error, in a few words: ``: message``, or nothing."""
        raw = b""
        for chunk in response.iter_bytes():
            raw += chunk
            if len(raw) >= _ERROR_BYTES:
                break
        try:
            said = json.loads(raw).get("error")
            said = said.get("message") if isinstance(said, dict) else said
        except (ValueError, RecursionError, AttributeError):
            said = None
        said = " ".join(str(said).split())[:200] if said else ""
        return f": {self._scrubbed(said)}" if said else ""

    def _scrubbed(self, text: str) -> str:
        return text.replace(self.api_key, "[key]") if self.api_key else text


class _SchemaRefused(Exception):
    """The server refused ``response_format``: it is asked again without it."""


def _capped(response: httpx.Response) -> Iterator[bytes]:
    """The reply's bytes as they come, until there are more than :data:`MAX_REPLY_BYTES`."""
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise GeneratorFailed(f"the reply is longer than {MAX_REPLY_BYTES:,} bytes")
        yield chunk


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Lines of the bytes: none is held longer than the bytes are, which :func:`_capped` bounds."""
    pending = b""
    for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        yield from lines
    if pending:
        yield pending


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise GeneratorFailed("the endpoint's reply is not JSON") from None


def _content(payload: Any) -> str:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise GeneratorFailed("the endpoint's reply holds no message") from None
    if not isinstance(content, str):
        raise GeneratorFailed("the endpoint's reply holds no text")
    return content

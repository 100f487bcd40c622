"""An OpenAI-compatible chat-completions endpoint on 127.0.0.1, for tests: it answers from a script, or replays a
real model's recorded replies (a cassette), or records them from a real endpoint.

Recording: start a real endpoint (docs/development.md, "Generated answers in tests"), then run the tests that use a
cassette with ``NEWSARCHIVE_RECORD_LLM=http://127.0.0.1:8080/v1``: each request is passed to it and its reply is
saved in ``tests/fixtures/cassettes/NAME.json``. Without it, the saved replies are served, and a request that was
not recorded fails the test.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CASSETTES = Path(__file__).parent / "fixtures" / "cassettes"
RECORD_ENV = "NEWSARCHIVE_RECORD_LLM"
Reply = Callable[[dict[str, Any]], "tuple[int, str] | str"]


class ChatServer:
    """Serves ``/v1/chat/completions``. ``reply(request)`` gives the assistant's text, or (status, raw body) for
    an error; requests are kept in ``requests`` and their headers in ``headers``. A server that ``hangs`` holds
    every request until it is closed: a client's deadline is then tested without racing a clock."""

    def __init__(self, reply: Reply, hangs: bool = False) -> None:
        self.reply = reply
        self.hangs = hangs
        self.closed = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append(dict(self.headers))
                if server.hangs:
                    server.closed.wait()
                    return
                answer = server.reply(body)
                if isinstance(answer, tuple):
                    status, raw = answer
                    self._send(status, raw.encode(), "application/json")
                elif body.get("stream"):
                    self._stream(body["model"], answer)
                else:
                    self._send(200, json.dumps(_completion(body["model"], answer)).encode(), "application/json")

            def _send(self, status: int, raw: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _stream(self, model: str, text: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for start in range(0, len(text), 7):
                    chunk = {"choices": [{"index": 0, "delta": {"content": text[start : start + 7]}}], "model": model}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        self.httpd.shutdown()
        self.httpd.server_close()


class Cassette:
    """A real model's replies, keyed by what was asked: replayed, or recorded from ``$NEWSARCHIVE_RECORD_LLM``."""

    def __init__(self, name: str) -> None:
        self.path = CASSETTES / f"{name}.json"
        self.recording = os.environ.get(RECORD_ENV)
        self.replies: dict[str, dict[str, Any]] = {}
        if self.path.exists() and not self.recording:
            self.replies = json.loads(self.path.read_text(encoding="utf-8"))

    def __call__(self, request: dict[str, Any]) -> str | tuple[int, str]:
        key = _key(request)
        if self.recording:
            asked = {**request, "stream": False}
            response = httpx.post(f"{self.recording}/chat/completions", json=asked, timeout=900)
            recorded: dict[str, Any] = {"model": request["model"], "asked": request["messages"][-1]["content"][-200:]}
            if response.is_success:
                recorded["reply"] = response.json()["choices"][0]["message"]["content"]
            else:  # a response_format the server refused, say: the client's next try is recorded too
                said = " ".join(response.text.split())[:200]  # no traceback, nor this machine's paths
                recorded["status"], recorded["body"] = response.status_code, json.dumps({"error": {"message": said}})
            self.replies[key] = recorded
            self.path.parent.mkdir(exist_ok=True)
            self.path.write_text(json.dumps(self.replies, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if key not in self.replies:
            raise AssertionError(f"{self.path.name} has no reply to this request: record it again ({RECORD_ENV})")
        found = self.replies[key]
        return (found["status"], found["body"]) if "status" in found else found["reply"]


def _key(request: dict[str, Any]) -> str:
    asked = {name: request.get(name) for name in ("model", "messages", "response_format")}
    return hashlib.sha256(json.dumps(asked, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }

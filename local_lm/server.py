"""A local OpenAI-compatible HTTP server backed by ``local_lm.responder``.

Tests, benchmarks and the offline demo point ``dspy.LM("openai/local", api_base=server.url)`` here so the real
client stack (DSPy -> LiteLLM/lm15 -> HTTP) runs without internet. Only loopback addresses may be bound.

Endpoints (``/v1`` prefix optional):
    POST /v1/chat/completions   OpenAI chat completions (``stream: true`` answered as SSE)
    POST /v1/embeddings         deterministic hashed bag-of-words embeddings
    GET  /v1/models             the advertised model ids
    GET  /stats                 request counters; POST /stats/reset clears them
    GET  /config                current knobs; POST /config {"latency_ms": 200, ...} changes them
    GET  /health                liveness probe

``/stats`` counts API calls (chat, embeddings, models) in ``requests``; control endpoints are not counted.

Failure injection applies to chat completions (and to embeddings when ``fail_embeddings`` is set):
one seeded draw per request picks 429 (with Retry-After), 500, a hung request (``timeout``) or success.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_lm import responder

logger = logging.getLogger(__name__)

MAX_TIMEOUT_SLEEP_S = 30.0
MAX_BODY_BYTES = 32 * 1024 * 1024
CHAT_MODEL_IDS = ("local",)
EMBEDDING_MODEL_IDS = ("local-embed",)
_STREAM_CHUNK_WORDS = 8


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ServerConfig:
    """Runtime knobs; every field can be changed with ``configure()`` or ``POST /config``."""

    latency_ms: float = 0.0
    fail_429_rate: float = 0.0
    fail_500_rate: float = 0.0
    timeout_rate: float = 0.0
    retry_after_s: float = 1.0
    seed: int = 0
    timeout_sleep_s: float = MAX_TIMEOUT_SLEEP_S
    fail_embeddings: bool = False

    def validated(self) -> ServerConfig:
        rates = (self.fail_429_rate, self.fail_500_rate, self.timeout_rate)
        if any(not 0.0 <= rate <= 1.0 for rate in rates):
            raise ValueError("failure rates must be between 0 and 1")
        if sum(rates) > 1.0 + 1e-9:
            raise ValueError("fail_429_rate + fail_500_rate + timeout_rate must not exceed 1")
        if self.latency_ms < 0 or self.retry_after_s < 0 or self.timeout_sleep_s < 0:
            raise ValueError("latency_ms, retry_after_s and timeout_sleep_s must be >= 0")
        return replace(self, timeout_sleep_s=min(self.timeout_sleep_s, MAX_TIMEOUT_SLEEP_S))

    def updated(self, knobs: Mapping[str, Any]) -> ServerConfig:
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(knobs) - set(known))
        if unknown:
            raise ValueError(f"unknown knob(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return replace(self, **{name: _coerce_knob(name, value) for name, value in knobs.items()}).validated()


def _coerce_knob(name: str, value: Any) -> Any:
    # Knobs arrive as JSON or CLI values; reject bools for numbers so `"latency_ms": true` is not 1 ms.
    if name == "fail_embeddings":
        if not isinstance(value, bool):
            raise ValueError("fail_embeddings must be a boolean")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number")
    return int(value) if name == "seed" else float(value)


def loopback_host(host: str) -> str:
    """Return the literal address to bind, refusing anything that is not 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return "127.0.0.1"  # resolving the name could yield a non-loopback address on odd hosts files
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"refusing to bind to {host!r}: use a loopback IP (127.0.0.0/8 or ::1)") from None
    if not address.is_loopback:
        raise ValueError(f"refusing to bind to non-loopback address {host!r}: local_lm only serves 127.0.0.0/8 or ::1")
    return str(address)


# --------------------------------------------------------------------------- statistics


class _Stats:
    """Thread-safe counters behind ``GET /stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._reset_counters()

    def _reset_counters(self) -> None:
        self._requests = 0
        self._chat = 0
        self._embeddings = 0
        self._max_in_flight = self._in_flight
        self._failures = {"429": 0, "500": 0, "timeout": 0}

    def reset(self) -> None:
        with self._lock:
            self._reset_counters()

    def count_request(self, kind: str) -> None:
        with self._lock:
            self._requests += 1
            self._chat += kind == "chat"
            self._embeddings += kind == "embeddings"

    def count_failure(self, failure: str) -> None:
        with self._lock:
            self._failures[failure] += 1

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self._requests,
                "chat_requests": self._chat,
                "embedding_requests": self._embeddings,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "failures_injected": dict(self._failures),
            }


# --------------------------------------------------------------------------- the server


class LocalLMServer:
    """OpenAI-compatible server on a loopback port, serving from a daemon thread.

    >>> server = LocalLMServer(latency_ms=50).start()
    >>> lm = dspy.LM("openai/local", api_base=server.url, api_key="local", cache=False)
    >>> server.stop()
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0,
        fail_429_rate: float = 0.0,
        fail_500_rate: float = 0.0,
        timeout_rate: float = 0.0,
        retry_after_s: float = 1,
        seed: int = 0,
        *,
        timeout_sleep_s: float = MAX_TIMEOUT_SLEEP_S,
        fail_embeddings: bool = False,
    ) -> None:
        self.host = loopback_host(host)
        self.port = port
        self._config = ServerConfig().updated(
            {
                "latency_ms": latency_ms, "fail_429_rate": fail_429_rate, "fail_500_rate": fail_500_rate,
                "timeout_rate": timeout_rate, "retry_after_s": retry_after_s, "seed": seed,
                "timeout_sleep_s": timeout_sleep_s, "fail_embeddings": fail_embeddings,
            }
        )
        self._config_lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stats = _Stats()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> LocalLMServer:
        if self._httpd is not None:
            raise RuntimeError("LocalLMServer is already running")
        self._stopping.clear()
        server_class = _HTTPServerV6 if ":" in self.host else _HTTPServer
        httpd = server_class((self.host, self.port), _Handler)
        httpd.owner = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        # A short poll interval keeps stop() fast; fixtures start and stop a server per test.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"local-lm-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hung (injected-timeout) and sleeping requests are woken and dropped."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd, self._thread = None, None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> LocalLMServer:
        return self.start() if not self.running else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses

    @property
    def base_url(self) -> str:
        if not self.running:
            raise RuntimeError("LocalLMServer is not running; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """OpenAI-style base URL (what ``api_base`` expects), e.g. ``http://127.0.0.1:8765/v1``."""
        return f"{self.base_url}/v1"

    # -- knobs and counters

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs at runtime (same names as the constructor); a new ``seed`` reseeds the failure dice."""
        with self._config_lock:
            self._config = self._config.updated(knobs)
            if "seed" in knobs:
                self._rng.seed(self._config.seed)
            return asdict(self._config)

    def config(self) -> dict[str, Any]:
        with self._config_lock:
            return asdict(self._config)

    def stats(self) -> dict[str, Any]:
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    # -- used by the request handler

    def _current_config(self) -> ServerConfig:
        with self._config_lock:
            return self._config

    def _draw_failure(self, config: ServerConfig) -> str | None:
        # One draw per request keeps the sequence reproducible whatever the rates are.
        with self._config_lock:
            roll = self._rng.random()
        for failure, rate in (("429", config.fail_429_rate), ("500", config.fail_500_rate),
                              ("timeout", config.timeout_rate)):
            if roll < rate:
                return failure
            roll -= rate
        return None

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stop() is called first; returns False when interrupted."""
        return not self._stopping.wait(seconds) if seconds > 0 else not self._stopping.is_set()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Many short-lived connections arrive at once under concurrent DSPy runs; the default of 5 drops some.
    request_queue_size = 128
    owner: LocalLMServer


class _HTTPServerV6(_HTTPServer):
    address_family = socket.AF_INET6


# --------------------------------------------------------------------------- request handling


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "local_lm/1.0"

    # -- routing

    def do_GET(self) -> None:
        routes: dict[str, Callable[[], None]] = {
            "/stats": lambda: self._send_json(200, self._owner.stats()),
            "/config": lambda: self._send_json(200, self._owner.config()),
            "/health": lambda: self._send_json(200, {"status": "ok"}),
            "/models": self._models,
        }
        self._dispatch(routes)

    def do_POST(self) -> None:
        routes: dict[str, Callable[[], None]] = {
            "/stats/reset": self._reset_stats,
            "/config": self._configure,
            "/chat/completions": self._chat_completions,
            "/embeddings": self._embeddings,
        }
        self._dispatch(routes)

    def _dispatch(self, routes: Mapping[str, Callable[[], None]]) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        route = routes.get(path.removeprefix("/v1"))
        if route is None:
            self._send_error(404, f"no route for {self.command} {self.path}", "invalid_request_error", "not_found")
            return
        try:
            route()
        except _BadRequest as exc:
            self._send_error(400, str(exc), "invalid_request_error", "invalid_request")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired during an injected hang)
        except Exception:
            # A bug here must read as a server error to the client, not as a dropped connection.
            logger.exception("local_lm failed to handle %s %s", self.command, self.path)
            self._send_error(500, "local_lm internal error (not injected); see server log", "server_error",
                             "internal_error")

    @property
    def _owner(self) -> LocalLMServer:
        return self.server.owner

    # -- control endpoints

    def _reset_stats(self) -> None:
        self._owner.reset_stats()
        self._send_json(200, self._owner.stats())

    def _configure(self) -> None:
        body = self._read_json()
        try:
            self._send_json(200, self._owner.configure(**body))
        except ValueError as exc:
            raise _BadRequest(str(exc)) from exc

    def _models(self) -> None:
        self._owner._stats.count_request("models")
        models = [{"id": m, "object": "model", "created": 0, "owned_by": "local_lm"}
                  for m in CHAT_MODEL_IDS + EMBEDDING_MODEL_IDS]
        self._send_json(200, {"object": "list", "data": models})

    # -- model endpoints

    def _chat_completions(self) -> None:
        body = self._read_json()
        self._owner._stats.count_request("chat")
        with self._owner._stats.in_flight():
            if not self._survive_latency_and_failures(inject=True):
                return
            try:
                reply = responder.respond(body)
            except ValueError as exc:
                raise _BadRequest(str(exc)) from exc
            model = str(body.get("model") or CHAT_MODEL_IDS[0])
            if body.get("stream"):
                self._stream_chat(model, reply, body)
            else:
                self._send_json(200, _chat_completion_body(model, reply, _choice_count(body)))

    def _embeddings(self) -> None:
        body = self._read_json()
        self._owner._stats.count_request("embeddings")
        with self._owner._stats.in_flight():
            inject = self._owner._current_config().fail_embeddings
            if not self._survive_latency_and_failures(inject=inject):
                return
            try:
                texts = responder.embedding_inputs(body.get("input"))
                dims = int(body.get("dimensions") or responder.DEFAULT_EMBEDDING_DIMS)
                vectors = [responder.embed(text, dims) for text in texts]
            except (TypeError, ValueError) as exc:
                raise _BadRequest(str(exc)) from exc
            encoding = body.get("encoding_format")
            data = [{"object": "embedding", "index": i, "embedding": responder.encode_embedding(v, encoding)}
                    for i, v in enumerate(vectors)]
            tokens = sum(responder.count_tokens(t) for t in texts)
            self._send_json(200, {
                "object": "list", "data": data, "model": str(body.get("model") or EMBEDDING_MODEL_IDS[0]),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })

    def _survive_latency_and_failures(self, *, inject: bool) -> bool:
        """Apply latency and maybe an injected failure; False means the response was already handled."""
        config = self._owner._current_config()
        if not self._owner._sleep(config.latency_ms / 1000):
            return False
        failure = self._owner._draw_failure(config) if inject else None
        if failure is None:
            return True
        self._owner._stats.count_failure(failure)
        if failure == "429":
            headers = {"Retry-After": _format_seconds(config.retry_after_s)}
            self._send_error(429, "Rate limit reached (injected by local_lm).", "rate_limit_error",
                             "rate_limit_exceeded", headers)
        elif failure == "500":
            self._send_error(500, "Internal server error (injected by local_lm).", "server_error", "server_error")
        elif self._owner._sleep(config.timeout_sleep_s):
            # The client normally gave up long ago; answer anyway so patient clients do not hang forever.
            self._send_error(504, "Request timed out (injected by local_lm).", "timeout", "timeout")
        return False

    def _stream_chat(self, model: str, reply: responder.ChatReply, body: Mapping[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        completion_id = f"chatcmpl-local-{uuid.uuid4().hex[:12]}"
        base = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        opening = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        self._send_event({**base, "choices": [opening]})
        for piece in _stream_pieces(reply.content):
            self._send_event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        self._send_event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._send_event({**base, "choices": [], "usage": _usage(reply)})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()

    def _send_event(self, payload: Mapping[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")
        self.wfile.flush()

    # -- plumbing

    def _read_json(self) -> dict[str, Any]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _BadRequest("invalid Content-Length") from None
        if length > MAX_BODY_BYTES:
            raise _BadRequest("request body too large")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise _BadRequest(f"request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _BadRequest("request body must be a JSON object")
        return body

    def _send_json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, status: int, message: str, error_type: str, code: str,
                    headers: Mapping[str, str] | None = None) -> None:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        self._send_json(status, body, headers)

    def log_message(self, format: str, *args: Any) -> None:
        # Tests make thousands of requests; stderr noise would bury real failures.
        logger.debug("%s %s", self.address_string(), format % args)


class _BadRequest(Exception):
    pass


def _choice_count(body: Mapping[str, Any]) -> int:
    n = body.get("n") or 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 16:
        raise _BadRequest("'n' must be an integer between 1 and 16")
    return n


def _usage(reply: responder.ChatReply) -> dict[str, int]:
    return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.total_tokens}


def _chat_completion_body(model: str, reply: responder.ChatReply, n: int) -> dict[str, Any]:
    choices = [{"index": i, "message": {"role": "assistant", "content": reply.content}, "logprobs": None,
                "finish_reason": "stop"} for i in range(n)]
    usage = _usage(reply)
    if n > 1:  # every choice is generated, so every choice is billed
        usage = {**usage, "completion_tokens": reply.completion_tokens * n,
                 "total_tokens": reply.prompt_tokens + reply.completion_tokens * n}
    return {"id": f"chatcmpl-local-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage, "system_fingerprint": "local_lm"}


def _stream_pieces(content: str) -> list[str]:
    """Split the answer into a few chunks at word boundaries so stream consumers see real deltas."""
    words = content.split(" ")
    pieces = [" ".join(words[i : i + _STREAM_CHUNK_WORDS]) for i in range(0, len(words), _STREAM_CHUNK_WORDS)]
    return [piece + (" " if i < len(pieces) - 1 else "") for i, piece in enumerate(pieces)]


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else str(seconds)


# --------------------------------------------------------------------------- command line (shared with manage.py)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of both ``python -m local_lm`` and ``manage.py run_local_lm``."""
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (127.0.0.0/8 or ::1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before every model response")
    parser.add_argument("--fail-429-rate", type=float, default=0.0, help="probability of an injected 429")
    parser.add_argument("--fail-500-rate", type=float, default=0.0, help="probability of an injected 500")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="probability of an injected hang")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429s")
    parser.add_argument("--seed", type=int, default=0, help="seed of the failure-injection dice")
    parser.add_argument("--timeout-sleep-s", type=float, default=MAX_TIMEOUT_SLEEP_S,
                        help=f"how long an injected hang lasts (capped at {MAX_TIMEOUT_SLEEP_S:g} s)")
    parser.add_argument("--fail-embeddings", action="store_true", help="inject failures into embeddings too")


def server_from_options(options: Mapping[str, Any]) -> LocalLMServer:
    return LocalLMServer(
        host=options["host"], port=options["port"], latency_ms=options["latency_ms"],
        fail_429_rate=options["fail_429_rate"], fail_500_rate=options["fail_500_rate"],
        timeout_rate=options["timeout_rate"], retry_after_s=options["retry_after"], seed=options["seed"],
        timeout_sleep_s=options["timeout_sleep_s"], fail_embeddings=options["fail_embeddings"],
    )


def serve_until_signalled(server: LocalLMServer, write: Callable[[str], None]) -> None:
    """Serve in the foreground until SIGTERM or SIGINT, then shut down cleanly."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.start()
        write(f"local_lm serving OpenAI-compatible API at {server.url}")
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(timeout=0.5):
            pass
        write("local_lm shutting down")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)

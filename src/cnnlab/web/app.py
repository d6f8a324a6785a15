"""``cnnlab explore``: a local web page over cnnlab's own API (FastAPI, served by uvicorn).

    from cnnlab.web.app import create_app
    app = create_app("geron_ex2", run=None)     # what the command line named

The page (``static/``: one HTML file, one script, one stylesheet, no
framework, nothing from a CDN) calls a JSON API whose documents are the CLI's
``--json`` documents:

=============================  ==============================================================
``GET /api/info``               what was named: the target, its input, the run (if any), the zoo names
``GET /api/network``            ``cnnlab analyze --json`` (``?model=`` the target or a zoo name, ``&input=C,H,W``)
``GET /api/layer``              one layer's row and its derivation (``?index=``, 1-based)
``GET /api/memory``             ``cnnlab memory --json`` + the step's memory-over-time curve (``?batch=&optimizer=&precision=``)
``GET /api/fit``                ``cnnlab fit --json`` (``?budget=`` e.g. 8GiB)
``POST /api/ops``               ``cnnlab ops OP --explain --json`` for a JSON body ``{op, input, kernel, …}``
``GET /api/zoo``                ``cnnlab zoo compare --json``
``GET /api/run``                the run's config, metrics per epoch and test report
``GET /api/run/image/{i}``      test image ``i`` as PNG; ``/api/run/predict/{i}``: its prediction and feature maps
=============================  ==============================================================

Safety: the server loads only the target and run the command line named —
the browser may pick a *zoo* name (cnnlab's own code) but never a module path
or a file, and the ops playground takes numbers typed in the request, never a
path (it reads nothing of the disk); request bodies over :data:`MAX_BODY` bytes are refused (413); every
bad request is a 4xx JSON ``{"error": "one line"}``, never a traceback.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from cnnlab import jsonsafe
from cnnlab.errors import CnnlabError
from cnnlab.text import printable
from cnnlab.web.state import BadValue, Explorer, UnknownItem

STATIC = Path(__file__).parent / "static"
MAX_BODY = 64 * 1024           # bytes: an ops request is a few hundred
MAX_BATCH = 65536
MAX_JSON_DEPTH = 16            # an ops body nests 4 levels at most; json.loads recurses once per level
OPTIMIZERS_NOTE = "see 'cnnlab memory --help'"


class BadRequest(Exception):
    """A 4xx answer with a one-line message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


MAX_MESSAGE = 400              # characters of an error message: never a long echo of what was sent


def _error(status: int, message: str) -> JSONResponse:
    text = printable(" ".join(str(message).split()))
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "…"
    return JSONResponse({"error": text}, status_code=status)


def create_app(target: str | None = None, run: str | Path | None = None,
               input_shape: tuple[int, ...] | None = None, host: str = "127.0.0.1") -> FastAPI:
    """The explore app for ``target`` (anything ``cnnlab analyze`` takes; default: a run's network, else
    small_cnn) at ``input_shape`` (default: its own), and an optional run folder."""
    ex = Explorer(target, Path(run) if run else None, input_shape)   # resolves and checks everything first
    app = FastAPI(title="cnnlab explore", docs_url=None, redoc_url=None, openapi_url=None)
    _add_guards(app, host)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_analysis_routes(app, ex, threading.Lock())
    return app


def _add_guards(app: FastAPI, host: str) -> None:
    """Host check (DNS rebinding), the body limit, and every error as a 4xx ``{"error": "one line"}``."""
    # only requests addressed to this machine's name for the server: another site cannot reach the page
    # through a DNS name of its own (DNS rebinding); "testserver" is FastAPI's TestClient
    hosts = ["*"] if host in ("0.0.0.0", "::") else ["127.0.0.1", "localhost", "[::1]", host, "testserver"]
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts)
    app.middleware("http")(_limit_body)
    app.add_exception_handler(BadRequest, lambda _, err: _error(err.status, str(err)))
    app.add_exception_handler(CnnlabError, lambda _, err: _error(STATUS.get(type(err), 400), str(err)))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(Exception, lambda _, err: _error(
        500, f"internal error ({type(err).__name__}); please report it with what you clicked"))


STATUS: dict[type, int] = {UnknownItem: 404, BadValue: 422}    # any other CnnlabError: 400


async def _limit_body(request: Request, call_next):  # type: ignore[no-untyped-def]
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        return _error(413, f"request body over {MAX_BODY} bytes")
    if request.method in ("POST", "PUT", "PATCH") and length is None:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, f"request body over {MAX_BODY} bytes")
        request._body = body         # starlette reads the cached body later
    return await call_next(request)


def _http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
    """An unknown path or a wrong method: the same ``{"error": ...}`` shape as every other 4xx."""
    if err.status_code == 404:
        message = f"no such page or API: {request.url.path[:80]}; the API is under /api (see /api/info)"
    elif err.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path[:80]}"
    else:
        message = str(err.detail)
    response = _error(err.status_code, message)
    if err.headers:
        response.headers.update(err.headers)
    return response


def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
    first = err.errors()[0] if err.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "body"))
    return _error(422, f"{where}: {first.get('msg', 'invalid value')}")


def _add_analysis_routes(app: FastAPI, ex: Explorer, lock: threading.Lock) -> None:
    """The JSON API: one computation at a time (the caches and the run model's hooks are shared)."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def info() -> dict[str, Any]:
        with lock:
            return ex.info()

    @app.get("/api/network")
    def network(model: str = "", input: str = "") -> dict[str, Any]:
        with lock:
            return ex.network(model, input).to_dict()

    @app.get("/api/drawing")
    def drawing(model: str = "", input: str = "") -> dict[str, Any]:
        with lock:
            return ex.drawing(model, input)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:     # browsers ask for it whatever the page links: no 404 in the console
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @app.get("/api/layer")
    def layer(index: int, model: str = "", input: str = "") -> dict[str, Any]:
        with lock:
            return ex.layer(model, input, index)

    @app.get("/api/memory")
    def memory(batch: int = 32, optimizer: str = "sgd", precision: str = "fp32", model: str = "",
               input: str = "") -> dict[str, Any]:
        _check_batch(batch)
        with lock:
            return ex.memory(model, input, batch, optimizer, precision)

    @app.get("/api/fit")
    def fit(budget: str, batch: int = 32, optimizer: str = "sgd", precision: str = "fp32", model: str = "",
            input: str = "") -> dict[str, Any]:
        _check_batch(batch)
        with lock:
            return ex.fit(model, input, budget, batch, optimizer, precision)

    @app.post("/api/ops")
    async def ops(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        with lock:
            return ex.ops(body)

    _add_run_routes(app, ex, lock)


async def _json_body(request: Request) -> Any:
    """The request's JSON body, its nesting checked before it is parsed."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise BadRequest("send the body as JSON (Content-Type: application/json)", 415)
    try:
        return jsonsafe.loads(await request.body() or b"null", MAX_JSON_DEPTH, unique_keys=True)
    except jsonsafe.TooDeep as err:
        raise BadRequest(f"the body is {err}") from None
    except jsonsafe.DuplicateKey as err:
        raise BadRequest(f"the body's JSON: {err}") from None
    except ValueError:
        raise BadRequest("the body must be JSON: {\"op\": \"conv1d\", \"input\": \"1,2,3\", ...}") from None


def _add_run_routes(app: FastAPI, ex: Explorer, lock: threading.Lock) -> None:
    """The zoo table and the run named on the command line."""

    @app.get("/api/zoo")
    def zoo() -> list[dict[str, Any]]:
        with lock:
            return _zoo_rows()

    @app.get("/api/run")
    def run_doc() -> dict[str, Any]:
        with lock:
            return ex.run_document()

    @app.get("/api/run/image/{index}")
    def run_image(index: int) -> Response:
        with lock:
            return Response(ex.run_image_png(index), media_type="image/png")

    @app.get("/api/run/predict/{index}")
    def run_predict(index: int) -> dict[str, Any]:
        with lock:
            return ex.run_predict(index)


def _check_batch(batch: int) -> None:
    if not 1 <= batch <= MAX_BATCH:
        raise BadRequest(f"batch {batch} is out of range; give 1 to {MAX_BATCH}", 422)


@lru_cache(maxsize=1)
def _zoo_rows() -> list[dict[str, Any]]:
    from cnnlab.zoo import compare

    return [r.to_dict() for r in compare()]

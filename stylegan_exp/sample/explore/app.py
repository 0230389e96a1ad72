"""The explorer's web app (Starlette): the page, its settings, and PNGs from the compiled generator.

Every image endpoint answers a bad parameter with 400 and one line naming it. Requests run one at a time
(the generator uses every core already); the page sends only the latest value of a control."""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from stylegan_exp.data.images import encode_image
from stylegan_exp.sample.explore.images import Explorer, RequestError, Truncation

PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
              "/explore.css": ("explore.css", "text/css; charset=utf-8")}


def _text(query: Any, key: str, default: str | None) -> str:
    value = query.get(key, default)
    if value is None:
        raise RequestError(f"{key} is missing")
    return value


def _int(key: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise RequestError(f"{key}={text!r} is not an integer") from None


def int_param(query: Any, key: str, default: int | None = None) -> int:
    return _int(key, _text(query, key, None if default is None else str(default)))


def seeds_param(query: Any, key: str, default: list[int]) -> list[int]:
    text = _text(query, key, ",".join(map(str, default)))
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RequestError(f"{key}={text!r} is not a comma-separated list of seeds") from None


def truncation_param(query: Any, default: Truncation) -> Truncation:
    """`psi` (a number) and `cutoff` (a layer count, or `none`: every layer), each the run's when absent."""
    psi_text = _text(query, "psi", str(default.psi))
    try:
        psi = float(psi_text)
    except ValueError:
        raise RequestError(f"psi={psi_text!r} is not a number") from None
    cut_text = _text(query, "cutoff", "none" if default.cutoff is None else str(default.cutoff))
    cutoff = None if cut_text.lower() in ("none", "null", "") else _int("cutoff", cut_text)
    return Truncation(psi, cutoff)


def png(image: np.ndarray, headers: dict[str, str] | None = None) -> Response:
    return Response(encode_image(image, "png"), media_type="image/png", headers=headers)


def make_app(explorer: Explorer, settings: dict[str, Any]) -> Starlette:
    """The app for one explorer; `settings` (the page's starting values and the snapshot's facts) is served
    as /api/info and holds the default `psi`, `cutoff` and the mixing and interpolation seeds."""
    lock = threading.Lock()
    default = Truncation(settings["psi"], settings["cutoff"])

    def answer(make: Callable[[Any], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                with lock:
                    return make(request.query_params)
            except RequestError as exc:
                return PlainTextResponse(f"{exc}\n", status_code=400)
        return endpoint

    def face(query: Any) -> Response:
        trunc = explorer.check_truncation(truncation_param(query, default))
        image = explorer.face(int_param(query, "seed"), trunc)
        score = explorer.score(image)
        return png(image, None if score is None else {"X-D-Score": f"{score:.6g}"})

    def mix(query: Any) -> Response:
        trunc = explorer.check_truncation(truncation_param(query, default))
        return png(explorer.mixing(seeds_param(query, "rows", settings["mixing_rows"]),
                                   seeds_param(query, "columns", settings["mixing_columns"]),
                                   _text(query, "range", settings["mixing_range"]), trunc))

    def interpolation(query: Any) -> Response:
        trunc = explorer.check_truncation(truncation_param(query, default))
        start, stop = settings["interpolation_seeds"]
        return png(explorer.interpolation(int_param(query, "start", start), int_param(query, "stop", stop),
                                          int_param(query, "steps", settings["interpolation_steps"]), trunc))

    def info(request: Request) -> Response:
        return JSONResponse(settings)

    def page(request: Request) -> Response:
        name, media = PAGE_FILES[request.url.path]
        return Response(resources.files(__package__).joinpath("page", name).read_bytes(), media_type=media)

    routes = [Route(path, page) for path in PAGE_FILES]
    routes += [Route("/api/info", info), Route("/api/face.png", answer(face)),
               Route("/api/mix.png", answer(mix)), Route("/api/interpolation.png", answer(interpolation))]
    return Starlette(routes=routes)


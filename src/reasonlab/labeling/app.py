"""The labeling web app: server-rendered pages for people and a JSON API for programs.

`create_app(db_path)` builds a FastAPI app over one labeling database (labeling/store.py). Each
request opens its own SQLite connection and closes it before answering, so the worker threads never
share one; every write is one `BEGIN IMMEDIATE` transaction committed before the response, so a
201 (or a 303 after a form) means the label is on disk.

Auth: every route but `GET /login`, `POST /login` and `GET /healthz` needs an annotator token, as
`Authorization: Bearer <token>` or the `reasonlab_session` cookie that `POST /login` sets (HttpOnly,
SameSite=Strict). A missing or unknown token is 401 on the API (`/api/...`) and a 303 to /login on
pages; an annotator on an admin route is 403. Forms carry a `csrf` field (auth.csrf_token), checked on
every form post (403 without it or with a wrong one); JSON posts need the Bearer header (a cookie
alone is 403), so no page of another site can post in an annotator's name (the login form has no
CSRF field: there is no session yet). Errors are JSON `{"detail": "<field>: <what is wrong>"}`; a
form error re-renders its page with the message under the same status. A write that still finds the
database locked after the 10 s busy timeout is 503 (nothing written; retry).

Routes: `GET /healthz`, `GET /api/next?kind=steps|pair` (200 item, 204 nothing left),
`POST /api/labels` (201 `{"label_id"}`; 422 malformed or out of range, 403 not leased to you, 404 no
such item, 409 already labelled or lease expired; nothing written on 4xx), `GET /api/labels` (the
caller's own labels), `GET /api/progress`, admin: `GET /api/admin/labels`, `GET /admin`,
`GET /admin/agreement` (labeling/report.py), `GET /admin/export?format=
stepwise|preference`. Pages: `/login`, `/logout`, `/` (-> /label), `/label`, `/pair` (GET and POST).

Usage:
    uvicorn.run(create_app(Path("labels.sqlite")), host="127.0.0.1", port=8765)
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Optional

import jinja2
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field, StrictInt, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool

from reasonlab.errors import ReasonlabError
from reasonlab.labeling.auth import SESSION_COOKIE, bearer_token, check_csrf, csrf_token
from reasonlab.labeling.records import RATINGS, SIDES, Annotator, LabelRejected, Lease
from reasonlab.labeling.report import agreement_html
from reasonlab.labeling.store import Store

TEMPLATES = Path(__file__).parent / "templates"
SESSION_SECONDS = 7 * 24 * 3600
MAX_FORM_FIELDS = 20_000  # a rating and a comment per step


class StepsOrPairLabel(BaseModel):
    """The body of `POST /api/labels`: `ratings` (+ `comments`) for a steps item, `choice` (+
    `comment`) for a pair item. Range checks (ratings in -1/0/1, comment keys, choices) are the
    store's, answered 422 with the field named."""

    item_id: StrictInt
    ratings: Optional[list[StrictInt]] = None
    comments: Optional[dict[str, StrictStr]] = None
    seconds: Optional[float] = Field(default=None, ge=0, allow_inf_nan=False)
    choice: Optional[StrictStr] = None
    comment: Optional[StrictStr] = None


class LoginRedirect(Exception):
    """A page asked for without a valid token: answered with a 303 to /login."""


def field_errors(errors: list[Mapping[str, Any]]) -> str:
    """Pydantic errors as one message naming each field: "ratings.2: Input should be ..."."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
        parts.append(f"{'.'.join(loc) or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(db_path: Path) -> FastAPI:
    """The labeling app over the database at `db_path` (created, with its CSRF secret, if new)."""
    db_path = Path(db_path)
    with Store(db_path) as store:
        store.secret()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True)
    templates = Jinja2Templates(env=env)
    app = FastAPI(
        title="reasonlab labeling", docs_url=None, redoc_url=None, openapi_url=None
    )  # no unauthenticated docs

    per_thread = threading.local()

    @contextmanager
    def opened() -> Iterator[Store]:
        """This worker thread's Store: one connection per thread, opened on its first request."""
        store = getattr(per_thread, "store", None)
        if store is None:
            store = per_thread.store = Store(db_path)
        yield store

    # -- who is asking ------------------------------------------------------------------------

    def identify(request: Request, store: Store) -> tuple[Annotator | None, str]:
        """(the annotator or None, how they came: 'bearer', 'cookie' or '')."""
        header = request.headers.get("authorization")
        if header is not None:
            token = bearer_token(header)
            return (store.annotator_for_token(token) if token else None), "bearer"
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return store.annotator_for_token(cookie), "cookie"
        return None, ""

    def api_caller(request: Request, store: Store, post: bool = False) -> Annotator:
        annotator, via = identify(request, store)
        if annotator is None:
            raise HTTPException(
                401,
                "Authorization: missing or unknown token (send Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if post and via != "bearer":
            raise HTTPException(
                403,
                "Authorization: JSON posts need the Authorization: Bearer header; "
                "a session cookie alone is refused",
            )
        return annotator

    def page_caller(request: Request, store: Store) -> Annotator:
        annotator, _ = identify(request, store)
        if annotator is None:
            raise LoginRedirect()
        return annotator

    def require_admin(annotator: Annotator) -> None:
        if not annotator.admin:
            raise HTTPException(403, f"role: {annotator.name} is an annotator; this is for admins")

    # -- errors -------------------------------------------------------------------------------

    @app.exception_handler(LoginRedirect)
    async def to_login(request: Request, exc: LoginRedirect) -> Response:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return JSONResponse({"detail": field_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(LabelRejected)
    async def rejected(request: Request, exc: LabelRejected) -> Response:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(sqlite3.OperationalError)
    async def busy(request: Request, exc: sqlite3.OperationalError) -> Response:
        # e.g. "database is locked" after the 10 s busy timeout: nothing was written; retry
        detail = f"database: {exc}; nothing was written, try again"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})

    # -- pages helpers ------------------------------------------------------------------------

    def page(
        request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        base = {"annotator": None, "message": None, "title": "reasonlab labeling"}
        return templates.TemplateResponse(request, name, {**base, **context}, status_code=status)

    def message_page(
        request: Request, annotator: Annotator | None, message: str, status: int
    ) -> HTMLResponse:
        return page(request, "base.html", {"annotator": annotator, "message": message}, status)

    def labelling_page(
        request: Request,
        store: Store,
        annotator: Annotator,
        kind: str,
        *,
        message: str | None = None,
        status: int = 200,
        lease: Lease | None = None,
        chosen: Mapping[str, Any] | None = None,
    ) -> HTMLResponse:
        """The /label or /pair page with the annotator's current item (or the next one)."""
        if lease is None:
            lease = store.lease_next(annotator.id, kind)
        context = {
            "annotator": annotator,
            "message": message,
            "lease": lease,
            "view": lease.public() if lease is not None else None,
            "progress": store.progress(annotator.id, kind),
            "csrf": csrf_token(store.secret(), store.token_hash(annotator.id)),
            "protocol": store.protocol,
            "chosen": dict(chosen or {}),
            "title": "reasonlab labeling: " + ("steps" if kind == "steps" else "pairs"),
        }
        return page(request, "label.html" if kind == "steps" else "pair.html", context, status)

    async def form_post(
        request: Request, kind: str, submit: Callable[[Store, Annotator, int, Any], None]
    ) -> Response:
        """A label form post: auth, CSRF, then `submit(store, annotator, item_id, form)`; on
        LabelRejected the page is shown again with the message (and, while the item is still
        leased, the answers given) under the rejection's status."""
        form = await request.form(max_fields=MAX_FORM_FIELDS)

        def work() -> Response:
            with opened() as store:
                annotator = page_caller(request, store)
                csrf = form.get("csrf")
                secret, token_hash = store.secret(), store.token_hash(annotator.id)
                if not check_csrf(secret, token_hash, csrf if isinstance(csrf, str) else None):
                    message = "csrf: missing or wrong form token; reload the page and try again"
                    return message_page(request, annotator, message, 403)
                item_id = None
                try:
                    item_id = form_int(form.get("item_id"), "item_id")
                    submit(store, annotator, item_id, form)
                except LabelRejected as err:
                    lease = None if item_id is None else store.current_lease(annotator.id, item_id)
                    return labelling_page(
                        request,
                        store,
                        annotator,
                        kind,
                        message=err.message,
                        status=err.status,
                        lease=lease,
                        chosen=raw_answers(form) if lease is not None else None,
                    )
            return RedirectResponse("/label" if kind == "steps" else "/pair", 303)

        return await run_in_threadpool(work)

    # -- health, login ------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> HTMLResponse:
        return page(request, "login.html", {})

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""

        def work() -> Response:
            with opened() as store:
                annotator = store.annotator_for_token(token)
                if annotator is None:
                    return page(
                        request, "login.html", {"message": "token: unknown token; check it"}, 401
                    )
                store.append_event("login", annotator.id)
            response = RedirectResponse("/admin" if annotator.admin else "/label", 303)
            response.set_cookie(
                SESSION_COOKIE,
                token,
                max_age=SESSION_SECONDS,
                httponly=True,
                samesite="strict",
                path="/",
            )
            return response

        return await run_in_threadpool(work)

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", 303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    # -- pages --------------------------------------------------------------------------------

    @app.get("/")
    def index(request: Request) -> Response:
        with opened() as store:
            page_caller(request, store)
        return RedirectResponse("/label", 303)

    @app.get("/label", response_class=HTMLResponse)
    def label_page(request: Request) -> HTMLResponse:
        with opened() as store:
            return labelling_page(request, store, page_caller(request, store), "steps")

    @app.post("/label")
    async def label_form(request: Request) -> Response:
        def submit(store: Store, annotator: Annotator, item_id: int, form: Any) -> None:
            item = store.item(item_id)
            if item is None:
                raise LabelRejected(404, f"item_id: no item {item_id}")
            if item.kind != "steps":
                raise LabelRejected(
                    422, f"item_id: item {item_id} is a pair item; label it on /pair"
                )
            ratings, comments = steps_answers(form, len(item.steps))
            store.submit_steps(
                annotator.id, item_id, ratings, comments, form_seconds(form.get("seconds"))
            )

        return await form_post(request, "steps", submit)

    @app.get("/pair", response_class=HTMLResponse)
    def pair_page(request: Request) -> HTMLResponse:
        with opened() as store:
            return labelling_page(request, store, page_caller(request, store), "pair")

    @app.post("/pair")
    async def pair_form(request: Request) -> Response:
        def submit(store: Store, annotator: Annotator, item_id: int, form: Any) -> None:
            choice = form.get("choice")
            if not isinstance(choice, str) or not choice:
                raise LabelRejected(422, f"choice: missing; pick one of {', '.join(SIDES)}")
            comment = form.get("comment")
            store.submit_pair(
                annotator.id,
                item_id,
                choice,
                comment if isinstance(comment, str) else "",
                form_seconds(form.get("seconds")),
            )

        return await form_post(request, "pair", submit)

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request) -> HTMLResponse:
        with opened() as store:
            annotator = page_caller(request, store)
            if not annotator.admin:
                return message_page(
                    request, annotator, f"role: {annotator.name} is an annotator; admins only", 403
                )
            summary = store.queue_summary()
            return page(
                request,
                "admin.html",
                {"annotator": annotator, "summary": summary, "title": "reasonlab labeling: admin"},
            )

    @app.get("/admin/agreement", response_class=HTMLResponse)
    def agreement_page(request: Request) -> Response:
        with opened() as store:
            require_admin(page_caller(request, store))
        try:
            return HTMLResponse(agreement_html(db_path))
        except ReasonlabError as err:
            return JSONResponse({"detail": f"agreement: {err}"}, status_code=409)

    @app.get("/admin/export")
    def export_download(request: Request, format: Literal["stepwise", "preference"]) -> Response:
        from reasonlab.labeling.export import export_text

        with opened() as store:
            annotator = page_caller(request, store)
            require_admin(annotator)
            text, n = export_text(store, format)
            store.append_event(
                "export", annotator.id, body={"format": format, "records": n, "out": "download"}
            )
        return Response(
            text,
            media_type="application/x-ndjson; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="labels-{format}.jsonl"'},
        )

    # -- JSON API -----------------------------------------------------------------------------

    @app.get("/api/next")
    def api_next(request: Request, kind: Literal["steps", "pair"] = "steps") -> Response:
        with opened() as store:
            annotator = api_caller(request, store)
            lease = store.lease_next(annotator.id, kind)
        if lease is None:
            return Response(status_code=204)
        return JSONResponse(lease.public())

    @app.post("/api/labels", status_code=201)
    async def api_label(request: Request) -> Response:
        raw = await request.body()

        def work() -> Response:
            with opened() as store:
                annotator = api_caller(request, store, post=True)
                body = parse_label_body(raw)
                if body.ratings is not None:
                    label_id = store.submit_steps(
                        annotator.id, body.item_id, body.ratings, body.comments, body.seconds
                    )
                else:
                    label_id = store.submit_pair(
                        annotator.id, body.item_id, body.choice, body.comment or "", body.seconds
                    )
            return JSONResponse({"label_id": label_id}, status_code=201)

        return await run_in_threadpool(work)

    @app.get("/api/labels")
    def api_own_labels(request: Request) -> list[dict[str, Any]]:
        with opened() as store:
            return store.labels_of(api_caller(request, store).id)

    @app.get("/api/progress")
    def api_progress(
        request: Request, kind: Optional[Literal["steps", "pair"]] = None
    ) -> dict[str, int]:
        with opened() as store:
            return store.progress(api_caller(request, store).id, kind)

    @app.get("/api/admin/labels")
    def api_all_labels(request: Request) -> list[dict[str, Any]]:
        with opened() as store:
            require_admin(api_caller(request, store))
            return store.all_labels()

    return app


# ---------------------------------------------------------------------------------------------
# Parsing requests (pure)


def parse_label_body(raw: bytes) -> StepsOrPairLabel:
    """The JSON body of a label post; LabelRejected(422) naming the field when it is malformed."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise LabelRejected(422, f"body: not valid JSON ({err})") from None
    if not isinstance(obj, dict):
        raise LabelRejected(422, "body: expected a JSON object")
    try:
        body = StepsOrPairLabel.model_validate(obj)
    except ValidationError as err:
        raise LabelRejected(422, field_errors(list(err.errors()))) from None
    if body.ratings is not None and body.choice is not None:
        raise LabelRejected(
            422, "ratings, choice: send ratings (a steps item) or choice (a pair item), not both"
        )
    if body.ratings is None and body.choice is None:
        raise LabelRejected(422, "ratings: missing (or choice, for a pair item)")
    return body


def form_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise LabelRejected(422, f"{name}: {value!r} is not an integer") from None


def form_seconds(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise LabelRejected(422, f"seconds: {value!r} is not a number") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise LabelRejected(422, f"seconds: {value!r}, expected a number >= 0")
    return seconds


def steps_answers(form: Any, n_steps: int) -> tuple[list[int], dict[str, str]]:
    """Ratings and comments from a steps form (`rating_<i>`, `comment_<i>`): the ratings must be
    given for steps 0, 1, ... without a gap; LabelRejected(422) naming the field otherwise."""
    given: dict[int, int] = {}
    comments: dict[str, str] = {}
    for key, value in form.multi_items():
        name, _, index = key.partition("_")
        if name not in ("rating", "comment") or not index:
            continue
        if not index.isdigit() or int(index) >= n_steps:
            raise LabelRejected(422, f"{key}: step index out of range (0..{n_steps - 1})")
        if name == "comment":
            if isinstance(value, str) and value.strip():
                comments[index] = value
            continue
        try:
            rating = int(value)
        except (TypeError, ValueError):
            rating = None
        if rating not in RATINGS:
            raise LabelRejected(
                422, f"{key}: {value!r} is not one of -1 (wrong), 0 (neutral), 1 (correct)"
            )
        given[int(index)] = rating
    ratings = []
    for i in range(n_steps):
        if i not in given:
            break
        ratings.append(given[i])
    if len(ratings) != len(given):
        missing = len(ratings)
        raise LabelRejected(
            422,
            f"rating_{missing}: missing (rate every step up to and including the first wrong one)",
        )
    return ratings, comments


def raw_answers(form: Any) -> dict[str, Any]:
    """The answers a form gave, to check them again on a re-rendered page: {"rating_0": "1", ...}."""
    return {
        k: v
        for k, v in form.multi_items()
        if isinstance(v, str) and k.split("_")[0] in ("rating", "comment", "choice")
    }

"""The labeling web app over real HTTP: a uvicorn server on 127.0.0.1 (a free port, in a thread) and
stdlib urllib requests. Auth (401, 303 to /login), roles (403), CSRF and cookie-only JSON posts (403),
validation (422 naming the field, nothing written), leases (403 / 404 / 409), the 201 path, the form
pages, the export round trip through judges/files.py and the agreement page.

Run: .venv/bin/pytest tests/test_label_app.py -q
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import pytest

from reasonlab.judges.files import read_records
from reasonlab.labeling.records import NewItem
from reasonlab.labeling.server import serving
from reasonlab.labeling.store import Store


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 303 comes back as it is


OPENER = urllib.request.build_opener(NoRedirect)


@dataclass
class Answer:
    status: int
    headers: dict
    text: str

    def json(self):
        return json.loads(self.text)

    @property
    def detail(self) -> str:
        return self.json()["detail"]


def call(url, method="GET", *, token=None, cookie=None, body=None, raw=None, form=None) -> Answer:
    headers, data = {}, None
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if cookie is not None:
        headers["Cookie"] = f"reasonlab_session={cookie}"
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if raw is not None:
        data, headers["Content-Type"] = raw, "application/json"
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with OPENER.open(request, timeout=30) as resp:
            return Answer(resp.status, dict(resp.headers), resp.read().decode())
    except urllib.error.HTTPError as err:
        return Answer(err.code, dict(err.headers), err.read().decode())


def steps_item(key: str, n: int = 4, first_error: int = 1, priority: float = 0.0) -> NewItem:
    body = {"steps": [f"{key} step {i}" for i in range(n)]}
    truth = {"first_error": first_error, "correct": False}
    return NewItem(key, "steps", f"{key} problem", body, "test", truth=truth, priority=priority)


@pytest.fixture
def app(tmp_path):
    """(base URL, store on the same database, tokens {name: token}): annotators ann and bob, admin boss."""
    store = Store(tmp_path / "labels.sqlite")
    tokens = {
        name: store.add_annotator(name, admin=name == "boss") for name in ("ann", "bob", "boss")
    }
    with serving(tmp_path / "labels.sqlite") as url:
        yield url, store, tokens
    store.close()


def written(store: Store) -> tuple[int, int]:
    return tuple(
        store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("labels", "events")
    )


def test_tokens_are_needed_everywhere_but_login_and_health(app):
    url, store, tokens = app
    assert call(url + "/healthz").json() == {"ok": True}
    assert call(url + "/login").status == 200
    for path in ("/api/next?kind=steps", "/api/labels", "/api/progress", "/api/admin/labels"):
        for kwargs in ({}, {"token": "not-a-token"}, {"cookie": "not-a-token"}):
            answer = call(url + path, **kwargs)
            assert answer.status == 401 and "Authorization" in answer.detail, (path, kwargs)
    wrong_bearer = call(url + "/api/progress", token="nope", cookie=tokens["ann"])
    assert wrong_bearer.status == 401  # a bad Bearer header is not rescued by a cookie
    assert call(url + "/docs").status in (401, 404) and call(url + "/openapi.json").status in (
        401,
        404,
    )
    for path in ("/", "/label", "/pair", "/admin"):
        for kwargs in ({}, {"cookie": "not-a-token"}):
            answer = call(url + path, **kwargs)
            assert answer.status == 303 and answer.headers["location"] == "/login", path
    assert call(url + "/api/progress", token=tokens["ann"]).json() == {
        "labelled": 0,
        "remaining": 0,
    }
    assert call(url + "/label", cookie=tokens["ann"]).status == 200


def test_annotators_cannot_reach_admin_routes_or_other_annotators_labels(app):
    url, store, tokens = app
    store.add_items([steps_item("x", priority=1), steps_item("y")])
    for who in ("ann", "bob"):
        item = call(url + "/api/next?kind=steps", token=tokens[who]).json()
        answer = call(
            url + "/api/labels",
            "POST",
            token=tokens[who],
            body={"item_id": item["id"], "ratings": [1, -1]},
        )
        assert answer.status == 201
    for path in (
        "/api/admin/labels",
        "/admin",
        "/admin/export?format=stepwise",
        "/admin/agreement",
    ):
        assert call(url + path, token=tokens["ann"]).status == 403, path
        assert call(url + path, cookie=tokens["ann"]).status == 403, path
    mine = call(url + "/api/labels", token=tokens["ann"]).json()
    assert [x["annotator"] for x in mine] == ["ann"] and "gold" not in mine[0]
    bob_id = store.annotator_for_token(tokens["bob"]).id
    also_mine = call(url + f"/api/labels?annotator_id={bob_id}", token=tokens["ann"]).json()
    assert also_mine == mine
    everyone = call(url + "/api/admin/labels", token=tokens["boss"]).json()
    assert sorted(x["annotator"] for x in everyone) == ["ann", "bob"]
    assert call(url + "/admin", cookie=tokens["boss"]).status == 200


def test_label_posts_answer_201_or_a_clear_4xx_and_write_nothing_on_4xx(app):
    url, store, tokens = app
    store.add_items([steps_item("x", n=4, priority=1), steps_item("other")])
    ann, bob = tokens["ann"], tokens["bob"]
    item = call(url + "/api/next?kind=steps", token=ann).json()
    assert (
        item["steps"] == [f"x step {i}" for i in range(4)]
        and "truth" not in item
        and "scores" not in item
    )
    assert call(url + "/api/next?kind=steps", token=ann).json()["id"] == item["id"]  # same lease
    before = written(store)
    post = f"{url}/api/labels"
    cases = [
        ({"item_id": item["id"], "ratings": [1, 5]}, 422, "ratings[1]"),
        ({"item_id": item["id"], "ratings": [1, 1, 1, 1, 1]}, 422, "out of range"),
        ({"item_id": item["id"], "ratings": [1, 1, 1, 1], "comments": {"7": "x"}}, 422, "comments"),
        ({"item_id": item["id"], "ratings": [-1, 1]}, 422, "first_error protocol"),
        ({"item_id": item["id"], "ratings": ["x"]}, 422, "ratings.0"),
        ({"item_id": item["id"], "ratings": [1, -1], "seconds": -1}, 422, "seconds"),
        ({"ratings": [1, -1]}, 422, "item_id"),
        ({"item_id": "one", "ratings": [1, -1]}, 422, "item_id"),
        ({"item_id": item["id"]}, 422, "ratings"),
        ({"item_id": item["id"], "choice": "left"}, 422, "steps item"),
        ({"item_id": 999, "ratings": [1, -1]}, 404, "item_id"),
    ]
    for body, status, fragment in cases:
        answer = call(post, "POST", token=ann, body=body)
        assert answer.status == status and fragment in answer.detail, (body, answer)
        assert isinstance(answer.detail, str)
    for raw in (b"{not json", b"[1, 2]", b""):
        answer = call(post, "POST", token=ann, raw=raw)
        assert answer.status == 422 and answer.detail.startswith("body"), raw
    not_yours = call(post, "POST", token=bob, body={"item_id": item["id"], "ratings": [1, -1]})
    assert not_yours.status == 403 and "not leased to you" in not_yours.detail
    cookie_only = call(post, "POST", cookie=ann, body={"item_id": item["id"], "ratings": [1, -1]})
    assert cookie_only.status == 403 and "Bearer" in cookie_only.detail
    assert call(post, "POST", body={"item_id": item["id"], "ratings": [1, -1]}).status == 401
    assert written(store) == before
    ok = call(
        post,
        "POST",
        token=ann,
        body={
            "item_id": item["id"],
            "ratings": [1, 0, -1],
            "comments": {"2": "no"},
            "seconds": 4.5,
        },
    )
    assert ok.status == 201
    row = store.db.execute("SELECT * FROM labels WHERE id = ?", (ok.json()["label_id"],)).fetchone()
    assert (json.loads(row["ratings"]), row["first_error"], row["seconds"]) == ([1, 0, -1], 2, 4.5)
    again = call(post, "POST", token=ann, body={"item_id": item["id"], "ratings": [1, 0, -1]})
    assert again.status == 409 and "already labelled" in again.detail
    assert call(url + "/api/progress", token=ann).json() == {"labelled": 1, "remaining": 1}
    nxt = call(url + "/api/next?kind=steps", token=ann).json()
    assert nxt["id"] != item["id"]
    assert call(url + "/api/next?kind=steps", token=bob).status == 204  # 'other' is leased to ann
    bad_kind = call(url + "/api/next?kind=essay", token=ann)
    assert bad_kind.status == 422 and bad_kind.detail.startswith("kind")


def test_pair_labels_map_the_sides_back(app):
    url, store, tokens = app
    store.add_items(
        [NewItem("p", "pair", "which?", {"a": "text A", "b": "text B"}, "t", truth={"choice": "a"})]
    )
    item = call(url + "/api/next?kind=pair", token=tokens["ann"]).json()
    assert {item["left"], item["right"]} == {"text A", "text B"} and "steps" not in item
    bad = call(
        url + "/api/labels",
        "POST",
        token=tokens["ann"],
        body={"item_id": item["id"], "choice": "a"},
    )
    assert bad.status == 422 and bad.detail.startswith("choice")
    ok = call(
        url + "/api/labels",
        "POST",
        token=tokens["ann"],
        body={"item_id": item["id"], "choice": "left", "comment": "shorter"},
    )
    assert ok.status == 201
    (label,) = store.all_labels()
    assert label["choice"] == ("a" if item["left"] == "text A" else "b")
    assert label["comments"] == {"": "shorter"}


def form_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html))


def test_forms_log_in_check_csrf_and_store_labels(app):
    url, store, tokens = app
    store.add_items([steps_item("x", n=3, priority=1), steps_item("y", n=3)])
    bad_login = call(url + "/login", "POST", form={"token": "wrong"})
    assert bad_login.status == 401 and "unknown token" in bad_login.text
    login = call(url + "/login", "POST", form={"token": tokens["ann"]})
    assert login.status == 303 and login.headers["location"] == "/label"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"reasonlab_session={tokens['ann']};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    page = call(url + "/label", cookie=tokens["ann"])
    assert page.status == 200 and "x step 0" in page.text and "0 labelled, 2 left" in page.text
    fields = form_fields(page.text)
    good = {
        "item_id": fields["item_id"],
        "rating_0": "1",
        "rating_1": "-1",
        "comment_1": "off by one",
        "seconds": "3",
    }
    other_csrf = form_fields(call(url + "/label", cookie=tokens["bob"]).text)["csrf"]
    before = written(store)
    for csrf in (None, "0" * 64, fields["csrf"][:-2]):
        form = dict(good) if csrf is None else {**good, "csrf": csrf}
        assert call(url + "/label", "POST", cookie=tokens["ann"], form=form).status == 403
    assert (
        call(url + "/label", "POST", cookie=tokens["ann"], form={**good, "csrf": other_csrf}).status
        == 403
    )
    for bad, fragment in (
        ({"rating_1": "7"}, "rating_1"),
        ({"rating_1": "1"}, "ratings"),
        ({"rating_5": "1"}, "rating_5"),
    ):
        answer = call(
            url + "/label",
            "POST",
            cookie=tokens["ann"],
            form={**good, "csrf": fields["csrf"], **bad},
        )
        assert answer.status == 422 and fragment in answer.text and "x step 0" in answer.text, bad
    assert written(store) == before
    done = call(url + "/label", "POST", cookie=tokens["ann"], form={**good, "csrf": fields["csrf"]})
    assert done.status == 303 and done.headers["location"] == "/label"
    (label,) = store.labels_of(store.annotator_for_token(tokens["ann"]).id)
    assert (label["ratings"], label["first_error"], label["comments"]) == (
        [1, -1],
        1,
        {"1": "off by one"},
    )
    assert "1 labelled, 0 left" in call(url + "/label", cookie=tokens["ann"]).text  # bob holds y
    store.add_items([NewItem("p", "pair", "which?", {"a": "text A", "b": "text B"}, "t")])
    pair_page = call(url + "/pair", cookie=tokens["ann"])
    pf = form_fields(pair_page.text)
    done = call(
        url + "/pair",
        "POST",
        cookie=tokens["ann"],
        form={"item_id": pf["item_id"], "csrf": pf["csrf"], "choice": "tie"},
    )
    assert done.status == 303
    assert store.all_labels()[-1]["choice"] == "tie"
    assert call(url + "/logout").headers["location"] == "/login"


def test_the_export_round_trips_through_the_judges_reader(app, tmp_path):
    url, store, tokens = app
    store.add_items([steps_item(f"s{k}", n=3, priority=-k) for k in range(3)])
    store.add_items([NewItem("p", "pair", "which?", {"a": "text A", "b": "text B"}, "t")])
    given = {"s0": [1, -1], "s1": [1, 1, 1], "s2": [-1]}
    for _ in given:
        item = call(url + "/api/next?kind=steps", token=tokens["ann"]).json()
        key = item["prompt"].split()[0]
        assert (
            call(
                url + "/api/labels",
                "POST",
                token=tokens["ann"],
                body={"item_id": item["id"], "ratings": given[key]},
            ).status
            == 201
        )
    pair = call(url + "/api/next?kind=pair", token=tokens["bob"]).json()
    call(
        url + "/api/labels",
        "POST",
        token=tokens["bob"],
        body={"item_id": pair["id"], "choice": "right"},
    )
    answer = call(url + "/admin/export?format=stepwise", token=tokens["boss"])
    assert answer.status == 200 and "attachment" in answer.headers["content-disposition"]
    path = tmp_path / "human.jsonl"
    path.write_text(answer.text, encoding="utf-8")
    read = read_records(path, strict=True)
    got = {r.id: (r.first_error, r.labels, r.source) for r in read.records}
    assert got == {
        "s0": (1, (True, False, False), "human"),
        "s1": (-1, (True, True, True), "human"),
        "s2": (0, (False, False, False), "human"),
    }
    (row,) = [
        json.loads(x)
        for x in call(
            url + "/admin/export?format=preference", token=tokens["boss"]
        ).text.splitlines()
    ]
    assert (
        row["prompt"] == "which?"
        and row["chosen"] == pair["right"]
        and row["rejected"] == pair["left"]
    )
    assert call(url + "/admin/export?format=csv", token=tokens["boss"]).status == 422
    assert [e["kind"] for e in store.events()].count("export") == 2


def test_the_agreement_page_is_the_report_of_the_database(app):
    url, store, tokens = app
    store.add_items([steps_item("x", n=3)])
    item = call(url + "/api/next?kind=steps", token=tokens["ann"]).json()
    body = {"item_id": item["id"], "ratings": [1, -1]}
    assert call(url + "/api/labels", "POST", token=tokens["ann"], body=body).status == 201
    page = call(url + "/admin/agreement", token=tokens["boss"])
    assert page.status == 200 and "<html" in page.text.lower()
    assert "1 label" in page.text, page.text[:2000]

"""The JSON API toolkit: one decorator declares a route, its schemas and its auth.

`@api.route(...)` loads and validates the body and query with marshmallow (400 for malformed JSON,
415 for a body that is not JSON, 422 with per-field errors), authenticates the caller (bearer
token, or the page session plus a CSRF token for unsafe methods), calls the view and dumps its
result. The same declarations generate the OpenAPI document, so the contract and the code cannot
drift apart. No domain knowledge here.

Each domain module declares its routes on a `Routes` of its own (`api = Routes()`, then
`@api.route(...)`); declaring records them there and nowhere else. `register(app, api)`, called by
the domain's `init_app`, is what puts them on an app and into its OpenAPI document, so importing a
module changes nothing global and two apps in one process never share or repeat a route.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, wraps
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, pre_load, validate
from sqlalchemy.exc import IntegrityError, PendingRollbackError

from core import idempotency
from core.bounds import INT_MAX
from core.db import db, unit_of_work
from core.errors import BadRequest, DomainError, Invalid, Unauthorized, problem
from core.limits import require_json
from core.security import read_api_token

API_PREFIX = "/api/v1"
EXTENSION = "moralcredit.api"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class BaseSchema(Schema):
    """Requests may carry fields we do not know (newer clients); they are ignored, never stored.
    Text never carries a NUL character (PostgreSQL cannot store one): that is a 422, not a 500."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _no_nul(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            bad = sorted(str(k) for k, v in data.items() if _has_nul(v))
            if bad:
                raise ValidationError({k: ["内容不能包含控制字符"] for k in bad})
        return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class AsciiDate(fields.Date):
    """A `YYYY-MM-DD` date in ASCII digits (no full-width "２０２６", which `\\d` would take)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.isascii():
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class PageQuery(BaseSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=INT_MAX))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=INT_MAX))


class ProblemSchema(Schema):
    """RFC 9457: a problem may carry extension members (e.g. `remaining_attempts` on a failed sign-in)."""

    class Meta:
        unknown = INCLUDE

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


@dataclass
class Page:
    items: Sequence[Any]
    page: int
    per_page: int
    total: int


def paginate(select: Any, query: dict[str, Any], session: Any) -> Page:
    """Run a SELECT for one page (per_page capped at 100) and count the whole."""
    import sqlalchemy as sa

    page = query.get("page", 1)
    per_page = min(query.get("per_page", 20), 100)
    total = session.scalar(sa.select(sa.func.count()).select_from(select.order_by(None).subquery()))
    items = session.scalars(select.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items, page, per_page, total or 0)


@dataclass(kw_only=True)
class RouteSpec:
    """One declared route: what the OpenAPI document says of it, and the Flask view that serves it."""

    rule: str  # the whole path, prefix included
    method: str
    view: Callable[..., Any]  # the function as declared
    endpoint: str  # `<module's domain>_<function>`, under the blueprint's name
    body: type[Schema] | None
    query: type[Schema] | None
    form: type[Schema] | None  # a multipart/form-data body (a file upload), instead of JSON
    response: type[Schema] | None
    status: int
    auth: bool
    many: bool
    paged: bool
    summary: str
    tag: str
    content_type: str | tuple[str, ...] | None = None
    errors: tuple[int, ...] = ()
    also: dict[int, type[Schema]] = field(default_factory=dict)
    idempotent: bool = False
    handler: Callable[..., Any] = field(init=False, repr=False)  # the Flask view: authenticate, load, call, dump


class Routes:
    """The JSON routes of one module: `api = Routes()`, then `@api.route(...)` on each view.

    Routes go under the app's `api` blueprint (`/api/v1`, endpoints `api.<domain>_<function>`) unless
    another `blueprint` and `url_prefix` are given. Declaring a route records it here only.
    """

    def __init__(self, blueprint: str = "api", url_prefix: str = API_PREFIX) -> None:
        self.blueprint = blueprint
        self.url_prefix = url_prefix
        self.specs: list[RouteSpec] = []

    def __iter__(self) -> Iterator[RouteSpec]:
        return iter(self.specs)

    def route(
        self,
        rule: str,
        method: str = "GET",
        *,
        body: type[Schema] | None = None,
        query: type[Schema] | None = None,
        form: type[Schema] | None = None,
        response: type[Schema] | None = None,
        status: int = 200,
        auth: bool = True,
        many: bool = False,
        paged: bool = False,
        summary: str = "",
        tag: str = "",
        content_type: str | tuple[str, ...] | None = None,
        errors: tuple[int, ...] = (),
        also: dict[int, type[Schema]] | None = None,
        idempotent: bool = False,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Declare a JSON route. The view gets `user`, and `data`/`query` when schemas are given.

        `idempotent`: the route accepts an `Idempotency-Key` header; a repeat gets the first response.
        The view then also gets `idempotency_key` (the client's, or a fresh one when none was sent).
        `form`: the body is multipart/form-data (fields and files), loaded by this schema into `data`.
        `also`: other successful answers the view may give (status → schema of its body), for the document.
        """

        def declare(func: Callable[..., Any]) -> Callable[..., Any]:
            domain = func.__module__.split(".")[0]
            spec = RouteSpec(
                rule=self.url_prefix + rule,
                method=method,
                view=func,
                endpoint=f"{domain}_{func.__name__}",
                body=body,
                query=query,
                form=form,
                response=response,
                status=status,
                auth=auth,
                many=many,
                paged=paged,
                summary=summary or (func.__doc__ or "").strip().split("\n")[0],
                tag=tag or domain,
                content_type=content_type,
                errors=errors,
                also=dict(also or {}),
                idempotent=idempotent,
            )
            spec.handler = _handler(spec)
            self.specs.append(spec)
            return spec.handler

        return declare


@dataclass
class _Api:
    """What one app knows of its API (in `app.extensions`): its routes, in registration order."""

    title: str
    version: str
    routes: list[RouteSpec] = field(default_factory=list)
    registered: list[Routes] = field(default_factory=list)
    token_user_loader: Callable[[int, int], Any] | None = None
    document: dict[str, Any] | None = None  # the OpenAPI document, built at its first request


def init_app(app: Flask, *, title: str, version: str) -> None:
    """Give `app` an API: no routes yet (domains `register` theirs) and `/api/openapi.json` listing them."""
    app.extensions[EXTENSION] = _Api(title, version)
    app.add_url_rule("/api/openapi.json", "openapi_json", _openapi_json)


def register(app: Flask, routes: Routes) -> None:
    """Serve `routes` on `app` and list them in its OpenAPI document; a second time is an error.

    A Flask blueprint takes no route once it is registered, and domains register one after another:
    so the app gets one empty blueprint per name (the endpoints' `api.` namespace, and exempt from
    the page CSRF check: `authenticate` checks the CSRF token of a page session itself), and each
    route is added to the app under that name, which is all that registering a blueprint does.
    """
    state = _state(app)
    if any(known is routes for known in state.registered):
        raise RuntimeError(f"these {routes.blueprint} routes are already registered on {app.name}")
    blueprint = app.blueprints.get(routes.blueprint)
    if blueprint is None:
        blueprint = Blueprint(routes.blueprint, __name__, url_prefix=routes.url_prefix or None)
        app.extensions["csrf"].exempt(blueprint)
        app.register_blueprint(blueprint)
    for spec in routes:
        app.add_url_rule(spec.rule, f"{blueprint.name}.{spec.endpoint}", spec.handler, methods=[spec.method])
    state.registered.append(routes)
    state.routes.extend(routes)


def token_user_loader(app: Flask, loader: Callable[[int, int], Any]) -> None:
    """Set `loader(user_id, token_version) -> user or None` for bearer tokens (the people domain's)."""
    _state(app).token_user_loader = loader


def routes_of(app: Flask) -> tuple[RouteSpec, ...]:
    """Every route registered on `app`, in registration order."""
    return tuple(_state(app).routes)


def _state(app: Flask) -> _Api:
    try:
        return app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("core.api.init_app(app) must come before routes are registered") from None


def authenticate() -> Any:
    """The caller: bearer token if one is sent, else the page session (CSRF-checked if unsafe)."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("token_invalid")
        user_id, version = read_api_token(token.strip())
        loader = _state(current_app).token_user_loader
        user = loader(user_id, version) if loader else None
        if user is None:
            raise Unauthorized("token_invalid")
        g._login_user = user  # what flask_login.current_user returns for this request
        g.auth_method = "token"
        return user
    if current_user.is_authenticated:
        if request.method not in SAFE_METHODS:
            try:
                current_app.extensions["csrf"].protect()
            except CSRFError as exc:
                raise BadRequest("csrf_failed") from exc
        g.auth_method = "session"
        return current_user._get_current_object()
    return None


def _load_body(schema: type[Schema]) -> Any:
    require_json()
    raw = request.get_data(cache=True)
    if not raw.strip():
        payload: Any = {}
    else:
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("malformed_json", "请求内容不是有效的 JSON") from exc
    return _validated(schema(), payload)


def _validated(schema: Schema, payload: Any) -> Any:
    if not isinstance(payload, dict):
        raise Invalid(errors={"_schema": ["请求内容应为 JSON 对象"]})
    try:
        return schema.load(payload)
    except ValidationError as exc:
        raise Invalid(errors=_flatten(exc.messages)) from exc


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow nests errors by field; the contract wants `{"field": ["message", ...]}`."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, list):
        out[prefix or "_schema"] = [str(m) for m in messages]
        return out
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = [str(m) for m in (value if isinstance(value, list) else [value])]
    return out


def _handler(spec: RouteSpec) -> Callable[..., Any]:
    """The Flask view of a route: authenticate, load and validate, call the declared view, dump."""
    func = spec.view

    def render(result: Any) -> Any:
        return _render(result, spec.response, spec.status, spec.many, spec.paged)

    @wraps(func)
    def view(**kwargs: Any) -> Any:
        user = authenticate()
        if spec.auth and user is None:
            raise Unauthorized()
        if spec.query is not None:
            kwargs["query"] = _validated(spec.query(), request.args.to_dict())
        if spec.body is not None:
            kwargs["data"] = _load_body(spec.body)
        if spec.form is not None:
            kwargs["data"] = _validated(spec.form(), {**request.form.to_dict(), **request.files.to_dict()})
        if not spec.idempotent:
            return render(func(user=user, **kwargs))
        key = idempotency.request_key()
        if key is not None and user is not None and (first := idempotency.replay(user.id, key)) is not None:
            return first
        kwargs["idempotency_key"] = key or f"auto-{uuid.uuid4().hex}"
        keyed = key is not None and user is not None
        try:
            if not keyed:
                return render(func(user=user, **kwargs))
            # The change and its response commit together: a crash keeps both or neither.
            with unit_of_work() as session:
                result = render(func(user=user, **kwargs))
                idempotency.keep(session, user.id, key, result)
            return result
        except DomainError as error:
            result = problem(
                error.status,
                error.code,
                error.detail,
                title=error.title,
                errors=error.errors,
                headers=error.headers,
            )
            if keyed:
                idempotency.remember(user.id, key, result)
            return result
        except (IntegrityError, PendingRollbackError):
            # A twin of this request in flight committed first: its response is the answer.
            db.session.rollback()
            first = idempotency.replay(user.id, key) if keyed else None
            if first is None:
                raise
            return first

    return view


def _render(result: Any, schema: type[Schema] | None, status: int, many: bool, paged: bool) -> Any:
    if isinstance(result, Response):
        return result
    if isinstance(result, tuple):
        result, status = result
    if paged:
        page: Page = result
        items = schema(many=True).dump(page.items) if schema else list(page.items)
        payload: Any = {"items": items, "page": page.page, "per_page": page.per_page, "total": page.total}
    elif schema is not None:
        payload = schema(many=many).dump(result)
    else:
        payload = result
    response = jsonify(payload)
    response.status_code = status
    return response


# OpenAPI ---------------------------------------------------------------------------------------

_PATH_PARAM = re.compile(r"<(?:(?P<conv>[a-z]+):)?(?P<name>\w+)>")


@cache
def _page_schema(schema: type[Schema]) -> type[Schema]:
    """One page envelope class per item schema, so that routes sharing it share one component."""
    return type(
        f"{schema.__name__.removesuffix('Schema')}PageSchema",
        (Schema,),
        {
            "items": fields.List(fields.Nested(schema)),
            "page": fields.Integer(),
            "per_page": fields.Integer(),
            "total": fields.Integer(),
        },
    )


def _openapi_json() -> Response:
    """The document is built once: routes are all registered before the first request, and an
    anonymous URL that costs a full schema walk per call is a cheap way to load the server."""
    state = _state(current_app)
    if state.document is None:
        state.document = openapi_document(state.routes, state.title, state.version)
    return jsonify(state.document)


def openapi_document(routes: Iterable[RouteSpec], title: str, version: str) -> dict[str, Any]:
    spec = APISpec(title=title, version=version, openapi_version="3.0.3", plugins=[MarshmallowPlugin()])
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Problem", schema=ProblemSchema)
    problem_ref = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        path = _PATH_PARAM.sub(lambda m: "{" + m.group("name") + "}", route.rule)
        operation: dict[str, Any] = {
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": f"{route.tag}_{route.view.__name__}",
        }
        parameters: list[dict[str, Any]] = []
        for m in _PATH_PARAM.finditer(route.rule):
            kind = (
                {"type": "integer", "minimum": 1, "maximum": INT_MAX}
                if m.group("conv") == "int"
                else {"type": "string"}
            )
            parameters.append({"in": "path", "name": m.group("name"), "required": True, "schema": kind})
        if route.query is not None:
            parameters.append({"in": "query", "schema": route.query})
        if parameters:
            operation["parameters"] = parameters
        if route.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
        if route.form is not None:
            content = {"multipart/form-data": {"schema": route.form}}
            operation["requestBody"] = {"required": True, "content": content}
        ok: dict[str, Any] = {"description": "OK"}
        if route.content_type:
            kinds = (route.content_type,) if isinstance(route.content_type, str) else route.content_type
            ok["content"] = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in kinds}
        elif route.response is not None:
            schema: Any = _page_schema(route.response) if route.paged else route.response
            body_schema: Any = {"type": "array", "items": schema} if route.many else schema
            ok["content"] = {"application/json": {"schema": body_schema}}
        responses: dict[str, Any] = {str(route.status): ok}
        for status, other in route.also.items():
            responses[str(status)] = {"description": "OK", "content": {"application/json": {"schema": other}}}
        # A bearer token is checked wherever one is sent (401), an id in the path may name nothing (404),
        # and a body may be malformed, too large or of another media type.
        codes = set(route.errors) | {401}
        if _PATH_PARAM.search(route.rule):
            codes.add(404)
        if route.body is not None or route.form is not None:
            codes |= {400, 413, 415, 422}
        if route.query is not None:
            codes.add(422)
        if route.auth:
            codes.add(403)
        for code in sorted(codes):
            responses[str(code)] = {"description": "Problem", "content": problem_ref}
        operation["responses"] = responses
        if route.auth:
            operation["security"] = [{"bearer": []}]
        if route.idempotent:
            parameters.append(
                {
                    "in": "header",
                    "name": "Idempotency-Key",
                    "required": False,
                    "schema": {"type": "string", "maxLength": 64},
                }
            )
            operation["parameters"] = parameters
            responses.setdefault("409", {"description": "Problem", "content": problem_ref})
        paths.setdefault(path, {})[route.method.lower()] = operation
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()

"""The control plane's HTTP API (SPEC §5): routes only; the work is in ``ControlPlane``.

Errors are JSON ``{"detail": ...}``: 400/404/409/422 for the caller's mistakes, 502/504 when the
lattice fails a call, never a 500 for bad input. Bearer-token auth applies when a token is configured.
Also: ``/metrics`` (Prometheus, same auth) and ``/ui``, the live dashboard (static files from
``controlplane/ui``; the page asks for the token when the API needs one).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hmac
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any, Protocol

import nats.errors
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from nats.aio.client import Client as NATS
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

from lattice import caps
from lattice.controlplane.docs import MANIFEST_BODY, WASM_BODY, mount_docs
from lattice.controlplane.observer import Observer
from lattice.controlplane.state import ControlState
from lattice.errors import (
    LatticeError,
    ManifestError,
    NotFound,
    VersionConflict,
    http_status,
)
from lattice.links import LatticeData
from lattice.messages import LinkDefinition
from lattice.settings import Settings

UNREACHABLE = (
    "the control plane cannot reach NATS right now (reconnecting): the lattice is unreachable; "
    "if it lasts, check the nats-server"
)
UI_ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


@functools.cache
def ui_file(name: str) -> bytes:
    """A file of the dashboard, shipped as package data."""
    return (resources.files("lattice.controlplane.ui") / name).read_bytes()


class InvokeRequest(BaseModel):
    operation: str = Field(examples=["HttpServer.HandleRequest"])
    payload_b64: str = Field(default="", description="the payload, base64")


class LinkBody(BaseModel):
    actor_id: str
    provider_id: str
    contract_id: str
    link_name: str = "default"
    values: dict[str, str] = Field(default_factory=dict)


LOOPBACK = ("127.0.0.1", "localhost", "::1")


class RollbackBody(BaseModel):
    version: str | None = None


class ControlPlaneApi(Protocol):
    """What the routes need of the control plane (``lattice.controlplane.service.ControlPlane``)."""

    id: str
    listen: str
    settings: Settings
    nc: NATS
    state: ControlState
    data: LatticeData
    observer: Observer

    def is_leader(self) -> bool: ...

    def hosts(self) -> list[dict[str, Any]]: ...

    def host(self, host_id: str) -> dict[str, Any]: ...

    async def metrics_text(self) -> bytes: ...

    async def read_body(self, request: Request, limit: int = ...) -> bytes: ...

    async def upload_artifact(self, wasm: bytes) -> dict[str, Any]: ...

    async def put_application(self, name: str, body: bytes, content_type: str | None) -> dict[str, Any]: ...

    async def applications(self) -> list[dict[str, Any]]: ...

    async def application(self, name: str, version: str | None = None) -> dict[str, Any]: ...

    async def rollback_application(self, name: str, version: str | None) -> dict[str, Any]: ...

    async def delete_application(self, name: str) -> dict[str, Any]: ...

    async def invoke(self, actor_id: str, operation: str, payload: bytes) -> bytes: ...


def create_app(cp: ControlPlaneApi) -> FastAPI:
    """The FastAPI application serving ``cp``."""
    app = FastAPI(title="lattice control plane", version="0.1.0", description=__doc__, docs_url=None, redoc_url=None)
    if cp.listen.rpartition(":")[0].strip("[]") in LOOPBACK:
        # DNS rebinding: a web page's script reaching 127.0.0.1 still sends its own site's name as Host
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK))
    mount_docs(app, "lattice control plane")

    async def auth(request: Request) -> None:
        token = cp.settings.api_token
        if not token:
            return
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise HTTPException(
                401,
                "missing bearer token: send 'Authorization: Bearer <token>' (CLI: --api-token, LATTICE_API_TOKEN)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not hmac.compare_digest(header[7:].strip().encode(), token.encode()):
            raise HTTPException(403, "wrong bearer token: use the control plane's LATTICE_API_TOKEN")

    async def reachable(request: Request) -> None:
        if not cp.nc.is_connected:
            raise HTTPException(503, UNREACHABLE, headers={"Retry-After": "1"})

    guarded = [Depends(auth), Depends(reachable)]

    @app.exception_handler(ManifestError)
    async def manifest_error(request: Request, exc: ManifestError) -> JSONResponse:
        return JSONResponse(
            {"detail": {"error": str(exc), "reason": exc.reason, "field": exc.field, "line": exc.line}},
            409 if isinstance(exc, VersionConflict) else 400,
        )

    @app.exception_handler(nats.errors.Error)
    async def nats_error(request: Request, exc: nats.errors.Error) -> JSONResponse:
        # JetStream still unavailable after the store's own retries: the lattice's fault, and passing
        return JSONResponse(
            {"detail": f"the lattice's state store is not available right now ({exc}); retry shortly"},
            503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(LatticeError)
    async def lattice_error(request: Request, exc: LatticeError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, http_status(exc))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 while the control plane is connected to NATS; 503 (``status: unavailable``) while it is not."""
        connected = cp.nc.is_connected
        body: dict[str, Any] = {"status": "ok" if connected else "unavailable", "nats": connected}
        body |= {"leader": cp.is_leader(), "id": cp.id}
        if not connected:
            body["detail"] = UNREACHABLE
        return JSONResponse(body, 200 if connected else 503)

    @app.get("/metrics", dependencies=guarded, include_in_schema=False)
    async def metrics() -> Response:
        return Response(await cp.metrics_text(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui")

    @app.get("/ui", include_in_schema=False)
    async def ui() -> HTMLResponse:
        return HTMLResponse(ui_file("index.html"))

    @app.get("/ui/{name}", include_in_schema=False)
    async def ui_asset(name: str) -> Response:
        if name not in UI_ASSETS:
            raise NotFound(f"no dashboard file {name!r}")
        return Response(ui_file(name), media_type=UI_ASSETS[name])

    @app.get("/v1/hosts", dependencies=guarded)
    async def hosts() -> list[dict[str, Any]]:
        return cp.hosts()

    @app.get("/v1/hosts/{host_id}", dependencies=guarded)
    async def host(host_id: str) -> dict[str, Any]:
        return cp.host(host_id)

    @app.post("/v1/artifacts", status_code=201, dependencies=guarded, openapi_extra=WASM_BODY)
    async def upload(request: Request) -> dict[str, Any]:
        return await cp.upload_artifact(await cp.read_body(request))

    @app.get("/v1/artifacts", dependencies=guarded)
    async def artifacts() -> list[dict[str, Any]]:
        return await cp.state.artifacts_list()

    @app.get("/v1/artifacts/{digest}", dependencies=guarded)
    async def artifact(digest: str) -> dict[str, Any]:
        meta = await cp.state.artifact(digest)
        if meta is None:
            raise NotFound(f"no artifact {digest}")
        return meta

    @app.put("/v1/applications/{name}", dependencies=guarded, openapi_extra=MANIFEST_BODY)
    async def put_application(name: str, request: Request) -> dict[str, Any]:
        body = await cp.read_body(request, limit=caps.MAX_MANIFEST_BYTES)
        return await cp.put_application(name, body, request.headers.get("content-type"))

    @app.get("/v1/applications", dependencies=guarded)
    async def applications() -> list[dict[str, Any]]:
        return await cp.applications()

    @app.get("/v1/applications/{name}", dependencies=guarded)
    async def application(name: str, version: str | None = None) -> dict[str, Any]:
        """The application; ``?version=V`` shows that stored version's manifest (versions stay addressable)."""
        return await cp.application(name, version)

    @app.post("/v1/applications/{name}/rollback", dependencies=guarded)
    async def rollback_application(name: str, body: RollbackBody | None = None) -> dict[str, Any]:
        """Deploy an earlier version again: ``{version}``, or by default the previous healthy one (SPEC §5)."""
        return await cp.rollback_application(name, body.version if body else None)

    @app.delete("/v1/applications/{name}", dependencies=guarded)
    async def delete_application(name: str) -> dict[str, Any]:
        return await cp.delete_application(name)

    @app.get("/v1/links", dependencies=guarded)
    async def links() -> list[dict[str, Any]]:
        return [link.to_dict() for link in cp.data.links.values()]

    @app.put("/v1/links", dependencies=guarded)
    async def put_link(body: LinkBody) -> dict[str, Any]:
        for value, prefix, what in ((body.actor_id, "M", "actor_id"), (body.provider_id, "V", "provider_id")):
            if not (value.startswith(prefix) and len(value) == 56 and value.isalnum()):
                raise HTTPException(422, f"{what} must be a 56-character id starting with {prefix}, got {value!r}")
        if ":" not in body.contract_id:
            raise HTTPException(422, f"contract_id must look like wasmcloud:keyvalue, got {body.contract_id!r}")
        link = LinkDefinition(body.actor_id, body.provider_id, body.contract_id, body.link_name, body.values)
        await cp.data.put_link(link)
        return link.to_dict()

    @app.delete("/v1/links/{actor_id}/{contract_id}/{link_name}", dependencies=guarded)
    async def delete_link(actor_id: str, contract_id: str, link_name: str) -> dict[str, Any]:
        if not await cp.data.delete_link(actor_id, contract_id, link_name):
            raise NotFound(f"no link for {contract_id} ({link_name}) from {actor_id}")
        return {"deleted": True}

    @app.post("/v1/actors/{actor_id}/invoke", dependencies=guarded)
    async def invoke(actor_id: str, body: InvokeRequest) -> dict[str, Any]:
        try:
            payload = base64.b64decode(body.payload_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise HTTPException(400, f"payload_b64 is not valid base64: {exc}") from exc
        result = await cp.invoke(actor_id, body.operation, payload)
        return {"payload_b64": base64.b64encode(result).decode()}

    @app.get("/v1/events", dependencies=guarded)
    async def event_stream(request: Request, recent: bool = False) -> StreamingResponse:
        """The lattice's CloudEvents as they happen; ``recent=true`` first replays the last ones kept
        (heartbeats excluded)."""
        queue = cp.observer.subscribe()
        replay = list(cp.observer.recent) if recent else []

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b": lattice events\n\n"
                for event in replay:
                    yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
                while not await request.is_disconnected():
                    try:
                        event = await asyncio.wait_for(queue.get(), 10)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()
            finally:
                cp.observer.unsubscribe(queue)

        return StreamingResponse(stream(), media_type="text/event-stream")

    return app

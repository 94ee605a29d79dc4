"""The API's own documentation: ``/docs`` and the request bodies FastAPI cannot infer.

``/docs`` is Swagger UI 5 (it renders the OpenAPI 3.1 document FastAPI writes; Swagger UI 4 cannot), served
from the files the ``fastapi-offline`` package ships under ``/docs-assets``: no CDN, so it works on a machine
without internet. ``WASM_BODY`` and ``MANIFEST_BODY`` describe the raw bodies of ``POST /v1/artifacts`` and
``PUT /v1/applications/{name}`` (read from the request stream, so FastAPI sees no parameter), so that the
document says what to send and schema-based clients and fuzzers can reach those routes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"

WASM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "an actor: a waPC core module or a component (SPEC §1, §7), signed or not",
        "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}},
    }
}

_COMPONENT: dict[str, Any] = {
    "type": "object",
    "required": ["name", "type", "properties"],
    "properties": {
        "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$"},
        "type": {"enum": ["actor", "capability"]},
        "properties": {
            "type": "object",
            "description": "image (sha256:<hex>, file://<path>, oci://…, builtin:<provider>), config, limits, wasi",
            "required": ["image"],
            "properties": {"image": {"type": "string"}},
        },
        "traits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"enum": ["spreadscaler", "daemonscaler", "linkdef"]},
                    "properties": {"type": "object"},
                },
            },
        },
    },
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "a wadm 0.x OAM application manifest (SPEC §5)",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "core.oam.dev/v1beta1"},
        "kind": {"const": "Application"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": "^[-\\w]{1,100}$"},
                "annotations": {
                    "type": "object",
                    "properties": {"version": {"type": "string"}, "description": {"type": "string"}},
                },
            },
        },
        "spec": {
            "type": "object",
            "required": ["components"],
            "properties": {"components": {"type": "array", "items": _COMPONENT}},
        },
    },
}

MANIFEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the manifest as YAML or JSON; a version, once stored, never changes (409 for other content)",
        "content": {
            "application/yaml": {"schema": MANIFEST_SCHEMA},
            "application/json": {"schema": MANIFEST_SCHEMA},
        },
    }
}


def mount_docs(app: FastAPI, title: str) -> None:
    """``/docs`` (Swagger UI 5) and its files under ``/docs-assets``."""
    app.mount("/docs-assets", StaticFiles(directory=str(ASSETS)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=title,
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
        )

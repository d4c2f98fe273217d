"""`srgan serve`: an HTTP API and a browser page for upscaling (FastAPI + uvicorn).

Needs the optional dependencies: `pip install 'srgan[serve]'`. `ServeSettings` imports without
them; `create_app` is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import ServeSettings, parse_model_specs

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["ServeSettings", "create_app", "parse_model_specs"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

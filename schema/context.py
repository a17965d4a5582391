"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import strawberry
from starlette.requests import Request

from dataloaders.catalog import CatalogLoaders
from domain.ports import CatalogReader
from settings import Settings


@dataclass(slots=True)
class Context:
    request: Request
    settings: Settings
    catalog: CatalogReader
    loaders: CatalogLoaders


Info: TypeAlias = strawberry.Info[Context, None]

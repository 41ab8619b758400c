"""FastAPI dependencies: the objects loaded once at start-up, reached by routes through ``Depends``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.pipeline import Pipeline
from service.settings import Settings


def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]

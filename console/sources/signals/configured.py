"""The signal sources a config names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from console.config import (
    FeedSignal,
    GithubSignal,
    HuggingFaceSignal,
    ModelScopeSignal,
    OciSignal,
    PypiSignal,
    resolve_secret,
)
from console.sources.signals import SignalSource
from console.sources.signals.feeds import FeedSource
from console.sources.signals.github import GithubSource
from console.sources.signals.huggingface import HuggingFaceSource
from console.sources.signals.modelscope import ModelScopeSource
from console.sources.signals.oci import OciSource
from console.sources.signals.pypi import PypiSource


def build_sources(
    configs: Sequence[object], default_interval: float, env: Mapping[str, str]
) -> list[SignalSource]:
    """One source per [[signals]] entry; tokens read from the environment variables the entries name."""

    sources: list[SignalSource] = []
    for config in configs:
        interval = getattr(config, "interval", None) or default_interval
        token = resolve_secret(getattr(config, "token_env", None), env)
        if isinstance(config, GithubSignal):
            sources.append(GithubSource(config, interval, token))
        elif isinstance(config, HuggingFaceSignal):
            sources.append(HuggingFaceSource(config, interval, config.resolved_endpoint(env), token))
        elif isinstance(config, ModelScopeSignal):
            sources.append(ModelScopeSource(config, interval, config.resolved_endpoint(env), token))
        elif isinstance(config, PypiSignal):
            sources.append(PypiSource(config, interval))
        elif isinstance(config, OciSignal):
            sources.append(OciSource(config, interval, token))
        elif isinstance(config, FeedSignal):
            sources.append(FeedSource(config, interval))
    return sources

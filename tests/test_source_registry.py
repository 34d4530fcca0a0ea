"""Every kind of source a gateway config may name has a source class behind it."""

from __future__ import annotations

import typing

from edge_agent.agent import SOURCE_TYPES
from edge_agent.config import SourceConfig


def test_every_source_type_in_the_config_can_be_built() -> None:
    union = typing.get_args(SourceConfig)[0]
    configured = set(typing.get_args(union))
    assert configured, "SourceConfig should be a union of source config models"
    assert configured == set(SOURCE_TYPES)

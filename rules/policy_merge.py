"""Key-by-key merge of a hierarchical setting over the Staff → Service → Branch → Company hierarchy.

The most specific level that sets a key wins, and the result remembers which level supplied each key,
so every decision can be explained ("fee 15 from branch 3"). Policies and notification settings both
merge here (store/hierarchy.py), so the two can never disagree on what "inherit" means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# From the most specific to the most general.
LEVELS: tuple[str, ...] = ("staff", "service", "branch", "company")


@dataclass(frozen=True)
class PolicySource:
    level: str
    entity_id: str


@dataclass(frozen=True)
class PolicyLayer:
    """One level's configuration of one policy type."""

    level: str
    entity_id: str
    config: Mapping[str, Any]


@dataclass(frozen=True)
class MergedPolicy:
    config: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, PolicySource] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.config


def merge_layers(layers: Sequence[PolicyLayer]) -> MergedPolicy:
    """Merge the layers; their order does not matter, the level decides who wins."""
    rank = {level: i for i, level in enumerate(LEVELS)}
    config: dict[str, Any] = {}
    sources: dict[str, PolicySource] = {}
    for layer in sorted(layers, key=lambda layer: rank[layer.level], reverse=True):
        for key, value in layer.config.items():
            config[key] = value
            sources[key] = PolicySource(layer.level, layer.entity_id)
    return MergedPolicy(config, sources)


def layers_for(
    configs: Mapping[tuple[str, str], Mapping[str, Any]], entities: Mapping[str, str]
) -> list[PolicyLayer]:
    """The layers that apply to one entity set, picked from all configurations of a company and type.

    `configs` maps (level, configurable_id) to a config; `entities` maps each level to the entity's id.
    """
    layers = []
    for level, entity_id in entities.items():
        config = configs.get((level, entity_id))
        if config is not None:
            layers.append(PolicyLayer(level, entity_id, config))
    return layers

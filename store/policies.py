"""Reads of `policy_configurations` for the hierarchy merge (rules/policy_merge.py)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import PolicyConfiguration
from rules.policy_merge import PolicyLayer


async def load_layers(
    session: AsyncSession, company_id: int, policy_type: str, entities: Mapping[str, object | None]
) -> list[PolicyLayer]:
    """The active configurations of `policy_type` for the given {level: id} entities, in one query."""
    wanted = [(level, str(entity_id)) for level, entity_id in entities.items() if entity_id is not None]
    if not wanted:
        return []
    rows = await session.execute(
        select(
            PolicyConfiguration.configurable_type,
            PolicyConfiguration.configurable_id,
            PolicyConfiguration.config,
        ).where(
            PolicyConfiguration.company_id == company_id,
            PolicyConfiguration.policy_type == policy_type,
            PolicyConfiguration.deleted_at.is_(None),
            or_(
                *(
                    and_(
                        PolicyConfiguration.configurable_type == level,
                        PolicyConfiguration.configurable_id == entity_id,
                    )
                    for level, entity_id in wanted
                )
            ),
        )
    )
    return [PolicyLayer(level, entity_id, config) for level, entity_id, config in rows.all()]

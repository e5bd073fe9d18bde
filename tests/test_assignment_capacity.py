"""Assignment under concurrency (issue 19, defect 4): creations at once never put more callbacks on a staff
member than their `max_open_callbacks` (the place is claimed in the write, under a lock on their row), and
of two people taking one callback at once ("take it") exactly one gets it — against PostgreSQL and Temporal.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from models.callbacks import (
    Assign,
    CallbackStatus,
    Escalate,
    PreparedCallback,
    Priority,
    StaffAction,
    StaffCandidate,
    callback_workflow_id,
)
from rules import callback_machine as machine
from rules.assignment import at_capacity
from rules.staff_actions import STAFF_ACTIONS
from tests.api_fixtures import ApiEnv, Sessions, callback_body, running_api
from tests.console_fixtures import http_sign_in
from tests.factories import add_staff, make_tenant, set_callback_policy
from tests.test_callback_machine import ANNA, BERT, SETTINGS, T0, request, staff


@pytest.fixture
async def api(
    time_skipping_env: WorkflowEnvironment, sessions: Sessions, task_queue: str
) -> AsyncIterator[ApiEnv]:
    async with running_api(time_skipping_env.client, sessions, task_queue) as env:
        yield env


async def test_concurrent_creations_respect_max_open_callbacks(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    solo = await add_staff(sessions, tenant, max_open_callbacks=1)
    pair = await add_staff(sessions, tenant, max_open_callbacks=2)
    service = api.http(await api.key("service", tenant))

    answers = await asyncio.gather(
        *(service.post("/v1/callbacks", json=callback_body(tenant, priority="urgent")) for _ in range(10))
    )
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    load = Counter(r.json()["assigned_to"] for r in answers)
    assert load[str(solo)] == 1
    assert load[str(pair)] == 2
    assert load[None] == 7  # nobody had room left: pending, as the rules say
    assert {r.json()["status"] for r in answers if r.json()["assigned_to"] is None} == {"pending"}

    # What the workflows hold is what the rows say (a refused claim was re-decided, not half written).
    for answer in answers:
        state = await api.callbacks.state(
            callback_workflow_id(answer.json()["company_id"], uuid.UUID(answer.json()["id"]))
        )
        assert state is not None
        assert (str(state.assigned_to) if state.assigned_to else None) == answer.json()["assigned_to"]
    listed = (await service.get("/v1/callbacks", params={"page_size": 50})).json()["items"]
    rows = Counter(item["assigned_to"] for item in listed)
    assert (rows[str(solo)], rows[str(pair)], rows[None]) == (1, 2, 7)

    # A place freed is a place taken again.
    admin = api.http(await api.key("admin", tenant))
    solo_callback = next(r.json()["id"] for r in answers if r.json()["assigned_to"] == str(solo))
    done = await admin.post(f"/v1/callbacks/{solo_callback}/complete", json={"notes": "called back"})
    assert done.status_code == 200, done.text
    after = await service.post("/v1/callbacks", json=callback_body(tenant, priority="urgent"))
    assert after.json()["assigned_to"] == str(solo)


async def test_two_people_taking_one_callback_at_once_one_wins(api: ApiEnv, sessions: Sessions) -> None:
    tenant = await make_tenant(sessions)
    await set_callback_policy(sessions, tenant, {"auto_assign": False})
    anna = await add_staff(sessions, tenant)
    bert = await add_staff(sessions, tenant)
    keys = {
        anna: await api.key("staff", tenant, staff_id=anna),
        bert: await api.key("staff", tenant, staff_id=bert),
    }
    created = (await api.http(keys[anna]).post("/v1/callbacks", json=callback_body(tenant))).json()
    assert created["status"] == "pending"
    path = f"/v1/callbacks/{created['id']}"

    takes = await asyncio.gather(
        *(api.http(key).post(f"{path}/assign", json={"if_unassigned": True}) for key in keys.values())
    )
    assert sorted(r.status_code for r in takes) == [200, 409], [r.text for r in takes]
    winner = next(r for r in takes if r.status_code == 200).json()["assigned_to"]
    loser = next(r for r in takes if r.status_code == 409)
    assert loser.headers["content-type"] == "application/problem+json"
    assert loser.json()["type"] == "/problems/already-taken"
    assert f"already assigned to {winner}" in loser.json()["detail"]
    detail = (await api.http(keys[anna]).get(path)).json()
    assert detail["assigned_to"] == winner
    assert [e["type"] for e in detail["events"]].count("callback.assigned") == 1

    # Taking one's own callback again is fine; a plain assign (a manager's reassign) is not a "take".
    winner_key = keys[anna] if winner == str(anna) else keys[bert]
    again = await api.http(winner_key).post(f"{path}/assign", json={"if_unassigned": True})
    assert again.status_code == 200
    other = bert if winner == str(anna) else anna
    moved = await api.http(await api.key("admin", tenant)).post(
        f"{path}/assign", json={"staff_id": str(other)}
    )
    assert moved.json()["assigned_to"] == str(other)

    # The console's assign form on an unassigned callback is a "take it".
    second = (await api.http(keys[anna]).post("/v1/callbacks", json=callback_body(tenant))).json()
    browser = api.http()
    await http_sign_in(browser, keys[bert])
    page = await browser.get(f"/console/callbacks/{second['id']}")
    assert 'name="if_unassigned" value="true"' in page.text
    form = {
        name: re.findall(rf'name="{name}" value="([^"]+)"', page.text)[0] for name in ("csrf", "submission")
    }
    await api.http(keys[anna]).post(f"/v1/callbacks/{second['id']}/assign", json={"if_unassigned": True})
    late = await browser.post(
        f"/console/callbacks/{second['id']}/assign",
        data={**form, "staff_id": str(bert), "if_unassigned": "true"},
    )
    assert late.status_code == 409
    assert "already assigned" in late.text
    assert (await api.http(keys[anna]).get(f"/v1/callbacks/{second['id']}")).json()["assigned_to"] == str(
        anna
    )


async def test_concurrent_escalations_respect_max_open_callbacks(api: ApiEnv, sessions: Sessions) -> None:
    """An escalation claims its new assignee's place in the same write as the creation does: escalations
    at once (each saw the colleagues free when it loaded them) never go past `max_open_callbacks`."""
    tenant = await make_tenant(sessions)
    anna = await add_staff(sessions, tenant)
    bert = await add_staff(sessions, tenant, max_open_callbacks=1)
    carla = await add_staff(sessions, tenant, max_open_callbacks=1)
    service = api.http(await api.key("service", tenant))
    created = [
        (await service.post("/v1/callbacks", json=callback_body(tenant, preferred_staff_id=str(anna)))).json()
        for _ in range(6)
    ]
    assert {c["assigned_to"] for c in created} == {str(anna)}

    admin = api.http(await api.key("admin", tenant))
    answers = await asyncio.gather(
        *(admin.post(f"/v1/callbacks/{c['id']}/escalate", json={"reason": "angry customer"}) for c in created)
    )
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
    load = Counter(r.json()["assigned_to"] for r in answers)
    assert (load[str(bert)], load[str(carla)], load[str(anna)]) == (1, 1, 4)
    # Every escalation is recorded; those nobody had room for stay with their assignee.
    assert {r.json()["escalation_count"] for r in answers} == {1}
    listed = (await admin.get("/v1/callbacks", params={"page_size": 50})).json()["items"]
    assert Counter(item["assigned_to"] for item in listed) == load
    for answer in answers:
        detail = (await admin.get(f"/v1/callbacks/{answer.json()['id']}")).json()
        assert detail["escalations"][0]["escalated_to"] == (
            None if answer.json()["assigned_to"] == str(anna) else answer.json()["assigned_to"]
        )


# --- the pure rules behind it (no Temporal, no database) ---------------------------------------------


def test_an_escalation_claims_whom_it_picks_and_skips_the_full() -> None:
    prepared = PreparedCallback(settings=SETTINGS, candidates=staff(ANNA, loads=(0,)))
    assigned = machine.open_callback(uuid.UUID(int=7), request(Priority.URGENT), prepared, T0).state
    team = [*staff(ANNA, BERT, loads=(1, 0))]
    team[1] = team[1].model_copy(update={"max_open_callbacks": 1})
    spec = STAFF_ACTIONS[StaffAction.ESCALATE]
    first = spec.apply(assigned, Escalate(reason="angry"), T0, team)
    assert (first.state.assigned_to, first.claim) == (BERT, BERT)
    again = spec.apply(assigned, Escalate(reason="angry"), T0, at_capacity(team, [BERT]))
    assert (again.state.assigned_to, again.claim) == (ANNA, None)
    assert again.escalation is not None
    assert again.escalation.escalated_to is None
    # A staff member's own assign is theirs to decide: it claims nothing.
    taken = STAFF_ACTIONS[StaffAction.ASSIGN].apply(assigned, Assign(staff_id=BERT), T0, team)
    assert (taken.state.assigned_to, taken.claim) == (BERT, None)


def test_open_callback_claims_whom_it_picks_and_skips_the_full() -> None:
    prepared = PreparedCallback(settings=SETTINGS, candidates=staff(ANNA, BERT, loads=(0, 1)))
    callback_id = uuid.UUID(int=99)
    first = machine.open_callback(callback_id, request(Priority.URGENT), prepared, T0)
    assert (first.state.assigned_to, first.claim) == (ANNA, ANNA)
    second = machine.open_callback(callback_id, request(Priority.URGENT), prepared, T0, full=[ANNA])
    assert (second.state.assigned_to, second.claim) == (BERT, BERT)
    nobody = machine.open_callback(callback_id, request(Priority.URGENT), prepared, T0, full=[ANNA, BERT])
    assert (nobody.state.assigned_to, nobody.claim, nobody.state.status) == (
        None,
        None,
        CallbackStatus.PENDING,
    )


def test_take_it_is_refused_only_when_someone_else_holds_the_callback() -> None:
    spec = STAFF_ACTIONS[StaffAction.ASSIGN]
    prepared = PreparedCallback(settings=SETTINGS, candidates=[])
    pending = machine.open_callback(uuid.UUID(int=5), request(), prepared, T0).state
    team = [StaffCandidate(id=ANNA, branch_id=7), StaffCandidate(id=BERT, branch_id=7)]
    taken = spec.apply(pending, Assign(staff_id=ANNA, if_unassigned=True), T0, team).state
    assert taken.assigned_to == ANNA
    spec.guard(taken, Assign(staff_id=ANNA, if_unassigned=True))  # one's own again: fine
    spec.guard(taken, Assign(staff_id=BERT))  # a plain assign (a manager's reassign): fine
    with pytest.raises(machine.AlreadyTaken, match=f"already assigned to {ANNA}"):
        spec.apply(taken, Assign(staff_id=BERT, if_unassigned=True), T0, team)

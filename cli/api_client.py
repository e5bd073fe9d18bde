"""A small synchronous client of the HTTP API, for the CLI and for scripts.

It speaks only HTTP (no database, no Temporal), so a terminal needs nothing but the API's URL and a key;
every failure comes back as `ApiError` carrying the API's own problem message.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The API answered with a problem (or could not be reached: status 0)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(self.describe())

    def describe(self) -> str:
        title = self.problem.get("title") or "error"
        detail = self.problem.get("detail")
        text = f"{title} ({self.status})" if self.status else title
        if detail:
            text += f": {detail}"
        if self.problem.get("fee") is not None and self.problem.get("currency"):
            text += f"\n  fee: {self.problem['fee']} {self.problem['currency']}"
        for error in self.problem.get("errors") or []:
            field_line = f"\n  {error.get('field')}: {error.get('message')}"
            if field_line.strip() not in text:
                text += field_line
        return text


class ApiClient:
    def __init__(self, base_url: str, api_key: str | None, *, timeout: float = 30.0) -> None:
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> Any:
        clean = {key: value for key, value in (params or {}).items() if value is not None and value != []}
        try:
            response = self._http.request(
                method, path, params=clean, json=json, headers=headers, content=content
            )
        except httpx.HTTPError as exc:
            raise ApiError(
                0, {"title": f"cannot reach the API at {self._http.base_url}", "detail": str(exc)}
            ) from exc
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:500]}
            raise ApiError(
                response.status_code, problem if isinstance(problem, dict) else {"detail": str(problem)}
            )
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- callbacks --------------------------------------------------------------------------------

    def create_callback(self, body: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        created: dict[str, Any] = self.request("POST", "/v1/callbacks", json=body, headers=headers)
        return created

    def list_callbacks(self, **params: Any) -> dict[str, Any]:
        page: dict[str, Any] = self.request("GET", "/v1/callbacks", params=params)
        return page

    def get_callback(self, callback_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/v1/callbacks/{callback_id}")
        return found

    def act(
        self,
        callback_id: str,
        action: str,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        changed: dict[str, Any] = self.request(
            "POST", f"/v1/callbacks/{callback_id}/{action}", json=body, headers=headers
        )
        return changed

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", "/v1/callbacks/summary")
        return found

    # --- policies and slots -----------------------------------------------------------------------

    def put_policy(
        self, scope: str, scope_id: str, policy_type: str, config: dict[str, Any]
    ) -> dict[str, Any]:
        stored: dict[str, Any] = self.request(
            "PUT", f"/v1/policies/{scope}/{scope_id}/{policy_type}", json={"config": config}
        )
        return stored

    def get_policy(self, scope: str, scope_id: str, policy_type: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/v1/policies/{scope}/{scope_id}/{policy_type}")
        return found

    def effective_policy(self, policy_type: str, **entities: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.request(
            "GET", "/v1/policies/effective", params={"policy_type": policy_type, **entities}
        )
        return found

    def slots(self, service_id: int, **params: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/v1/services/{service_id}/slots", params=params)
        return found

    def next_slots(self, service_id: int, **params: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/v1/services/{service_id}/slots/next", params=params)
        return found

    # --- notifications ----------------------------------------------------------------------------

    def put_notification_setting(
        self, scope: str, scope_id: str, event_type: str, channel: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        stored: dict[str, Any] = self.request(
            "PUT", f"/v1/notification-settings/{scope}/{scope_id}/{event_type}/{channel}", json=body
        )
        return stored

    def delete_notification_setting(self, scope: str, scope_id: str, event_type: str, channel: str) -> None:
        self.request("DELETE", f"/v1/notification-settings/{scope}/{scope_id}/{event_type}/{channel}")

    def notification_settings(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.request("GET", "/v1/notification-settings", params=params)
        return found

    def effective_notifications(self, **params: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.request(
            "GET", "/v1/notification-settings/effective", params=params
        )
        return found

    def deliveries(self, **params: Any) -> dict[str, Any]:
        page: dict[str, Any] = self.request("GET", "/v1/notifications", params=params)
        return page

    def notification_events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.request("GET", "/v1/notification-events")
        return found

    # --- appointments -----------------------------------------------------------------------------

    def change_appointment(
        self,
        appointment_id: int,
        change: str,
        body: dict[str, Any],
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """`change`: cancel or reschedule. Resend with the same key after a failure: nothing happens twice."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        outcome: dict[str, Any] = self.request(
            "POST", f"/v1/appointments/{appointment_id}/{change}", json=body, headers=headers
        )
        return outcome

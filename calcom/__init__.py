"""Cal.com API v2: the client (httpx), its rate limiter and slot cache, the slot finder, and a
contract-faithful fake server for tests and the local stack. See DESIGN §3.4 and `calcom-api.md`."""

"""Cal.com API v2: the client (httpx) with its wire formats, rate limiter and slot cache, and the slot
finder. The fake Cal.com the tests and the local stack run is in `devstack/calcom_fake/`, outside
production code."""

"""How the outside talks to the engine: the typed client, the HTTP API and the CLI."""

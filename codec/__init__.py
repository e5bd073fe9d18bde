"""Payload encryption for Temporal: what leaves the process for the Temporal server is ciphertext."""

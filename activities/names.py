"""Activity names: the contract between workflows and activities, importable without any I/O library."""

PREPARE_CALLBACK = "prepare_callback"
LOAD_STAFF_CANDIDATES = "load_staff_candidates"
PERSIST_TRANSITION = "persist_transition"

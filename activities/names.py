"""Activity names: the contract between workflows and activities, importable without any I/O library."""

PREPARE_CALLBACK = "prepare_callback"
LOAD_STAFF_CANDIDATES = "load_staff_candidates"
PERSIST_TRANSITION = "persist_transition"

# Policy engine (activities/policies.py)
REFRESH_MODIFICATION_STATS = "refresh_modification_stats"
CHECK_APPOINTMENT_CHANGE = "check_appointment_change"

"""Activity names: the contract between workflows and activities, importable without any I/O library."""

PREPARE_CALLBACK = "prepare_callback"
LOAD_STAFF_CANDIDATES = "load_staff_candidates"
PERSIST_TRANSITION = "persist_transition"
# Error types of persist_transition (ApplicationError.type): a referenced row was deleted under the
# callback (details: models.callbacks.DeadReferences), or the database refused the data for good.
DEAD_REFERENCE = "DeadReference"
PERSIST_REFUSED = "PersistRefused"
# A write's claim on a staff member's capacity came too late (details: the staff id): pick someone else.
CAPACITY_FULL = "CapacityFull"
# The stuck mark of a callback whose database step keeps failing (models/stuck.py).
MARK_STUCK = "mark_callback_stuck"
CLEAR_STUCK = "clear_callback_stuck"

# Policy engine (activities/policies.py)
REFRESH_MODIFICATION_STATS = "refresh_modification_stats"
CHECK_APPOINTMENT_CHANGE = "check_appointment_change"
CALCOM_FIND_SLOTS = "calcom_find_slots"
CALCOM_CREATE_BOOKING = "calcom_create_booking"
CALCOM_CANCEL_BOOKING = "calcom_cancel_booking"
CALCOM_RESCHEDULE_BOOKING = "calcom_reschedule_booking"

# Appointment changes (activities/appointments.py)
PLAN_APPOINTMENT_CHANGE = "plan_appointment_change"
RECORD_APPOINTMENT_CHANGE = "record_appointment_change"
# ... of the per-appointment workflow (AppointmentWorkflow)
BEGIN_APPOINTMENT_CHANGE = "begin_appointment_change"
FINISH_APPOINTMENT_CHANGE = "finish_appointment_change"
SETTLE_APPOINTMENT_CHANGE = "settle_appointment_change"

# Error types workflows tell apart (ApplicationError.type)
APPOINTMENT_NOT_FOUND = "AppointmentNotFound"

# Notifications (activities/notifications.py)
RESOLVE_NOTIFICATIONS = "resolve_notifications"
DELIVER_NOTIFICATION = "deliver_notification"
START_NOTIFICATIONS = "start_notifications"
ABANDON_DELIVERY = "abandon_delivery"
# How a delivery attempt ended (ApplicationError.type), for the workflow to tell apart: the channel
# refused the message for good; it failed and a retry follows; it failed and the retries are used up;
# another attempt holds the row's lease (try again once that lease has run out).
DELIVERY_REFUSED = "DeliveryRefused"
DELIVERY_FAILED = "DeliveryFailed"
DELIVERY_EXHAUSTED = "DeliveryExhausted"
DELIVERY_BUSY = "DeliveryBusy"
# The workflow type the activity above starts (named here so activities need not import workflows).
NOTIFY_EVENT_WORKFLOW = "NotifyEventWorkflow"

# Periodic jobs (activities/operations.py)
RECONCILE_CALLBACKS = "reconcile_callbacks"
RECONCILE_UNLISTED_WORKFLOWS = "reconcile_unlisted_workflows"
PURGE_SOFT_DELETED = "purge_soft_deleted"
# Cal.com bookings reconciliation (activities/calcom_sync.py)
CALCOM_SYNC_COMPANIES = "calcom_sync_companies"
CALCOM_SYNC_BOOKINGS = "calcom_sync_bookings"
# The callback workflow's type and query, for activities that start or ask it (they never import workflows).
CALLBACK_WORKFLOW = "CallbackWorkflow"
CALLBACK_STATE_QUERY = "state"

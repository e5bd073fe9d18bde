"""Pure business rules: no I/O, no clock, no Temporal. Workflows and activities both call them."""

"""Pure routing logic: no I/O, no async, no service imports."""

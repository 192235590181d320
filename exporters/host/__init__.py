"""Host collectors: one module per collector, reading /proc and /sys."""

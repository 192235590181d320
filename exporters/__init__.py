"""obslab.exporters: the host exporter (/proc, /sys) and the eBPF exporter (tracepoints)."""

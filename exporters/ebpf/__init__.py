"""obslab.exporters.ebpf"""

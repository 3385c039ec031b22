"""The daemon's pipeline stages as threads joined by bounded, dropping queues."""

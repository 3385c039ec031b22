"""Workstation-side training: dataset readers, models, training loops, reports."""

"""Reads for the staff overview and the staff tenant list (each module owns one page)."""

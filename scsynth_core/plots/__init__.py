"""Figures: one function per figure type, pure matplotlib/scanpy, each returns a Figure."""

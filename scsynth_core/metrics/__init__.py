"""Evaluation metrics of the four papers: pure functions on arrays/AnnData, no I/O."""

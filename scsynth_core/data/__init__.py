"""Data: downloads, readers, checks, preparation recipes, splits and the bundled demo dataset."""

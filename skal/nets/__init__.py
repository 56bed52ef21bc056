"""Plain ``torch.nn`` modules used by skal's estimators (no scikit-learn here)."""

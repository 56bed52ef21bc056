"""skal: deep active learning (BALD, BGADL, WAAL) as scikit-learn citizens."""

__version__ = "0.1.0.dev0"

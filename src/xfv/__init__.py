"""xfv: explainable face verification (C-Score confidence and X-Map explanations) for any embedding model."""

__version__ = "0.1.0"

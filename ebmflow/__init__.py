"""ebmflow: the executable companion to "Balanced Training of Energy-Based Models with Adaptive Flow
Sampling" (Grenioux, Moulines, Gabrié; arXiv 2306.00684)."""

__version__ = "0.1.0"

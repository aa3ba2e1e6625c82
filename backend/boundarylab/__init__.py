"""Boundary Lab: watch a NumPy neural network learn a decision boundary, live."""

__version__ = "0.1.0"

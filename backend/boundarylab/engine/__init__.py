"""The engine: pure computation (schema, data, network, training, sweeps). No web, no I/O.

Nothing in this package imports boundarylab.server; tests/test_architecture.py enforces it.
"""

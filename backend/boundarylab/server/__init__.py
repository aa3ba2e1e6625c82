"""The server: HTTP and WebSocket API, runs, workers and fan-out. It never does the math;
it drives boundarylab.engine."""

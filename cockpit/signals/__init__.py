"""The live signals: sources (one module per kind), the poller, the bounded store, the
evaluator (thresholds, hold and hysteresis, severity) and the views the panels draw.
No UI code."""

"""Practice: tapes (recording and reading), replay (seek, ghost), scenarios, the
scorecard and the simulated service the demo and scenario drills run against. No UI
code."""

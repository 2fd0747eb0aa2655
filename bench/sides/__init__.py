"""Side scripts: one per (suite, library), each run in its own interpreter by the harness."""

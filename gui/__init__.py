"""The Qt application: a thin client of the engine and the run store."""

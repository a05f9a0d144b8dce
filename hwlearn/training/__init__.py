"""Training loops, substrates, sessions and progress: what runs an experiment on a substrate."""

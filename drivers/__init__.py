"""Real instruments: transports, small drivers, and the Bench that composes them into a Rig."""

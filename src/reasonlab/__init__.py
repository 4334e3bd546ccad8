"""reasonlab: build o1-style reasoning models and measure what makes them work."""

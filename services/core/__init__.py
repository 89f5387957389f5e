"""Settings and domain errors: what every other package may import."""

"""Feedback: stored first, then delivered to Phoenix/Arize with retry."""

"""The logic, by concern; nothing here imports FastAPI. Wiring: container, lifespan, cli."""

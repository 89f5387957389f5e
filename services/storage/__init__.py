"""The database (MongoDB or the embedded engine), conversations and magic keys."""

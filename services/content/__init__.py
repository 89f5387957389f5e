"""News and code samples: their collections, snapshots, seeding and setup."""

"""HTTP-only plumbing: middlewares, the error mapper and OpenAI wire schemas."""

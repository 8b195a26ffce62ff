"""Who may do what, and proof of who did it: bearer tokens (tokens), the
development issuer (dev), permissions, HTTP dependencies (http) and per-subject
rate limits (ratelimit)."""

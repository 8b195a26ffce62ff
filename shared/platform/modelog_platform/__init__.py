"""modelog's platform runtime: what the five services are built from.

Adapters for Kafka, PostgreSQL and S3, identity (tokens, permissions, the
development issuer), the HTTP plumbing every service shares, the local engines
and service supervisor behind `modelog up`, and the demo.
"""

"""modelog's contract: what every part of the registry, and every verifier, agrees on.

The pure domain (commands, events, decide/evolve, policies and gate rules),
the codec and JSON Schemas of the wire format, and the audit logic that checks
a log copy and its seals offline. No engine, no server dependency.
"""

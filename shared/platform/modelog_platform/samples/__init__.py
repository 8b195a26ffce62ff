"""Scripts as modelog's users write them, run by the demo (`modelog demo`)."""

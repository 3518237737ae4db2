"""Harnesses shared by more than one folder of tests: the fixed dates, request bodies, a served
bento's helpers, the trained world, payment frames and registrable lookup models."""

"""hastack's policy pack; the rules live in :mod:`policies.rules` (no policy server needed to import it)."""

"""Helpers every test folder shares: mappings, run contexts, the private network namespace."""

"""Host checks (testinfra): see conftest.py."""

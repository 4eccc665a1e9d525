import os

# Tests run with a throwaway key; production refuses to start without SECRET_KEY.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")

pytest_plugins = ["tests.fixtures_local_lm"]

"""The corpus holds programs, not tests: ``test_corpus.py`` runs each in a subprocess.
Nothing here is collected by this project's own session (a corpus test project
has its own ``conftest.py`` and tests, run in their own pytest)."""

collect_ignore_glob = ["*"]

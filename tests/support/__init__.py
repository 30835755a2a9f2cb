"""Helpers the tests share (not collected: no module here is named test_*). Fakes of
production classes live in tests/fakes.py."""

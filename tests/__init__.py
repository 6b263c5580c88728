import pytest

# The shared helpers assert like tests do; rewritten, a failing one shows its values too.
pytest.register_assert_rewrite("tests.fixtures")

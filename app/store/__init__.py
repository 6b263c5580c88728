"""The store: its interfaces (`interfaces.py`), the records they pass (`records.py`), the
backends (`sqlite/`), and `backends.open_store` that picks one by the `GANGWAY_DB` value."""

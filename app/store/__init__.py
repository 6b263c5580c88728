"""The store: its interfaces (`interfaces.py`), the records they pass (`records.py`), the
backends (`sqlite/`, the embedded one; `postgres/`, several nodes on one database), and
`backends.open_store` that picks one by the `GANGWAY_DB` value (a file path or a URL)."""

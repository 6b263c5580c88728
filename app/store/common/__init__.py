"""What both backends do alike and that needs no database: checking what a write is given,
turning rows into records, assembling answers. Each backend keeps its own SQL (dialects and
placeholders differ) and calls these, so the two implementations cannot drift apart here."""

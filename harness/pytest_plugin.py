"""pytest plugin placeholder, replaced by the plugin module (kept importable so the entry point resolves)."""

"""The Textual terminal UI of makemore (installed as ``makemore.tui``)."""

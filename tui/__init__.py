"""The Textual terminal UI of makemore.

The package sits at the top level of the repository (``tui/``) and installs as ``makemore.tui``: pyproject
maps the directory into the makemore distribution, for an editable install and a wheel alike, so
``import makemore.tui`` works in both and there is no top-level ``tui`` module. The core library never imports
it; ``makemore tui`` does, lazily.
"""

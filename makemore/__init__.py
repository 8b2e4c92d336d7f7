"""makemore: character-level language models that learn a list of words and generate more like them.

Importing this package is cheap (no torch); the heavy parts are imported by the commands that need them.
"""

__version__ = "0.1.0"

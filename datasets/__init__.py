"""Built-in word lists (installed as ``makemore.datasets``); see README.md here for sources and licences."""

"""makemore: language models that learn a list of words or a text and generate more like it.

Importing this package is cheap (no torch); the heavy parts are imported by what needs them. The Python API:

    import makemore
    run = makemore.train("names", type="transformer", max_time=60, out="runs/x")
    model = makemore.load("runs/x")
    model.sample(10, temperature=0.8, prefix="ma")

``makemore.train``, ``makemore.load``, ``makemore.lr_find``, ``makemore.Model``, ``makemore.Run`` live in
``makemore.api``; every error a user can cause is a ``makemore.MakemoreError``.
"""

__version__ = "0.1.0"

from makemore.errors import MakemoreError  # noqa: E402  (torch-free)

_API = ("train", "load", "lr_find", "Model", "Run")
__all__ = ["MakemoreError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from makemore import api

        return getattr(api, name)
    raise AttributeError(f"module 'makemore' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API's names too (they are imported on first use): tab completion and ``help`` see them."""
    return sorted({*globals(), *_API})

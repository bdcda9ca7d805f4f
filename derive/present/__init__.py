"""Presentation rules shared by every output: `derive grad` (text, JSON), `derive show` and lectures.

- :mod:`.numbers`: how a number is written (significant digits, LaTeX powers of ten,
  brackets around negatives). A leaf: no imports from derive.
- :mod:`.display`: which value is shown (a sum that cancels to rounding noise shows as 0).
- :mod:`.equations`: the neutral equation chain ``lhs = formula = numbers = value``
  with repeats dropped, and its text and LaTeX printers.
- :mod:`.width`: how wide text may be, and folding long lines to it.
"""

"""Synthetic online shop with planted ground truth (``workbench demo synth``).

Customers buy by a BG/NBD process and spend by Gamma-Gamma; what they buy and browse follows
planted category and brand affinities and a price level. The planted truth is written beside
the data (``truth/``) so model tests can check that what was planted is recovered. Entry point:
:func:`generate`.
"""

from workbench.synth.generate import generate
from workbench.synth.settings import SynthSettings

__all__ = ["SynthSettings", "generate"]

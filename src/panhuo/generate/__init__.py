"""Synthetic brokerage generator: realistic, coherent test and demo data in data contract v1.

``generate_brokerage(out, customers, seed, ...)`` writes all eight contract tables; see
:mod:`panhuo.generate.brokerage` for the run, :mod:`panhuo.generate.model` for the customer
model, and :mod:`panhuo.generate.campaign` for the past SMS campaign and its true effect.
"""

from __future__ import annotations

from panhuo.generate.brokerage import BLOCK_SIZE, TABLE_ORDER, Progress, default_as_of, generate_brokerage

__all__ = ["generate_brokerage", "default_as_of", "BLOCK_SIZE", "TABLE_ORDER", "Progress"]

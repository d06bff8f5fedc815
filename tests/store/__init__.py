"""Tests of the operational store."""

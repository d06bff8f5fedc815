"""Tests of playbooks: schema, lifecycle, CLI, starter library."""

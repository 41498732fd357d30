"""Tests for Direct Push."""

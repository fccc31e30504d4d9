"""Sympozium package."""

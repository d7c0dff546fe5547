"""Reusable model families that services build on."""

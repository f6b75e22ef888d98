"""Analyses over a run's masks (area curves, objects, comparisons), each in its folder."""

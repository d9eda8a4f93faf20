"""The local fleet: every process of DESIGN.md on this machine, under supervisor."""

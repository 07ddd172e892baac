"""DIMSE service classes: Verification and Storage (PS3.4 Annexes A and B)."""

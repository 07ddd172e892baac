"""DICOM networking (PS3.7, PS3.8): upper layer, association, DIMSE, C-ECHO, C-STORE."""

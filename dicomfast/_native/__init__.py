"""Private Cython modules over the C core. Nothing here is public API."""

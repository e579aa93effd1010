# Examples: built by make, checked by make check (see examples/README).

# Manual pages (section 3), installed by make install.

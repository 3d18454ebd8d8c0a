"""The `streamkit` command line: thin command modules over the library."""

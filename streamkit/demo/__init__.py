"""The demo application `make demo` runs (see `app.py`)."""

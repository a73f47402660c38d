import time as _time

#: Process start as seen by the package; start-up benchmarks measure from here.
STARTED_AT = _time.perf_counter()

__version__ = "0.1.0"

import os

# Kernel tests call numba with threads=2; the workflow tests start their own processes.
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

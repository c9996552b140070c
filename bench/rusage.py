"""Fallback for GNU time (`/usr/bin/time -f "%M %U %S" -o FILE CMD...`) where it is missing.

Usage: python3 -I -S rusage.py FILE CMD...: runs CMD, writes "maxrss_kib user_s sys_s" to FILE,
exits with CMD's status. Why a launcher at all: ru_maxrss counts the memory image a child was
forked from until it execs, so a child of the (large) harness would report the harness's size.
Forked from this small interpreter instead, the floor is about 8 MiB (GNU time's is about 1 MiB).
"""
import os
import sys

pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{usage.ru_maxrss} {usage.ru_utime:.3f} {usage.ru_stime:.3f}\n")
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)

"""exec argv with SIGINT at its default (a background job of a script ignores it)."""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])

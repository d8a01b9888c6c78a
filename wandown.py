#!/usr/bin/env python3
"""Run wandown from a checkout: python wandown.py [options]."""

import sys

from wandown.cli import main

sys.exit(main())

"""mutualaid: software to run an online mutual aid plan, exact to the fen and verifiable by anyone."""

__version__ = "0.1.0"

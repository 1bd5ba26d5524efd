"""mathrl: reinforcement learning with verifiable rewards on math reasoning."""

__version__ = "0.1.0"

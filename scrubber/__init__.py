"""scrubber: check claim lines against declarative denial rules before they go to a clearinghouse."""

__version__ = "0.1.0"

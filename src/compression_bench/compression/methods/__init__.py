"""Compression methods, one module each; every module in this package is imported and registers its methods."""

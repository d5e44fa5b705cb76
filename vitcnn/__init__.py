"""vitcnn: a performance regression suite for compiled vision backbones."""

__version__ = "0.1.0"

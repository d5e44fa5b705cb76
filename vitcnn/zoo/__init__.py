"""The models: window attention, ViTDet upcycling, and the registry of benchmarked backbones and their tiny twins.

First stage of the data flow (zoo -> measure -> run file -> gate / report). What users import lives here:

    from vitcnn.zoo import WindowAttention, window_partition, window_unpartition, upcycle
    from vitcnn.zoo import models; models.build("vitdet_b16", img_size=1024)
"""

from vitcnn.zoo import models
from vitcnn.zoo.vitdet import upcycle
from vitcnn.zoo.window import WindowAttention, window_partition, window_unpartition

__all__ = ["WindowAttention", "models", "upcycle", "window_partition", "window_unpartition"]

"""Instance selectors: which locations or instances a component distils."""
from .dense_head import DenseHeadReader
from .general_instance import GeneralInstanceSelector, gi_scores

__all__ = ['DenseHeadReader', 'GeneralInstanceSelector', 'gi_scores']

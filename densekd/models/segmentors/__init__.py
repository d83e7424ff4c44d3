"""Segmentor wrappers: label-assisted teachers (LAD)."""
from .label_assisted import LabelAssistedSegmentor, dual_path_consistency
from .label_encoding import fixed_code_encoding, label_values, random_code_encoding

__all__ = ['LabelAssistedSegmentor', 'dual_path_consistency', 'fixed_code_encoding',
           'label_values', 'random_code_encoding']

# LAD label-assisted teacher: the toy PSPNet R34-w32 (configs/toy/pspnet_r34-w32_1500i_toy.py,
# model, data and 1500-iteration schedule unchanged) wrapped so that it also reads a noised
# encoding of the ground truth; two noised paths per step plus their symmetric CWD (weight 5,
# tau 4, the reference's values). Distil a student from it with
# lad_cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py.
_base_ = ['../toy/pspnet_r34-w32_1500i_toy.py']

model = dict(
    _delete_=True,
    type='densekd.LabelAssistedSegmentor',
    segmentor={{_base_.model}},
    # repeated here so that a DistillationModel reading this config sees the normalisation
    data_preprocessor={{_base_.model.data_preprocessor}},
    consistency_weight=5.0,
    consistency_tau=4.0,
    assist_at_test=True)  # validation scores the teacher with the labels; False: without

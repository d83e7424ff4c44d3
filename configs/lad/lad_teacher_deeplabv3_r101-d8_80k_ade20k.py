# LAD label-assisted teacher, ADE20K template: mmseg's DeepLabV3 R101-d8
# (mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-80k_ade20k-512x512.py, model, data and 80k schedule
# unchanged) wrapped by densekd.LabelAssistedSegmentor: a noised label channel, two noised paths
# per step, symmetric CWD between them (weight 5, tau 4). Data layout: data/README.md.
_base_ = ['mmseg::deeplabv3/deeplabv3_r101-d8_4xb4-80k_ade20k-512x512.py']

model = dict(
    _delete_=True,
    type='densekd.LabelAssistedSegmentor',
    segmentor={{_base_.model}},
    # repeated here so that a DistillationModel reading this config sees the normalisation
    data_preprocessor={{_base_.model.data_preprocessor}},
    consistency_weight=5.0,
    consistency_tau=4.0,
    assist_at_test=True)
# Fine-tune mmseg's trained RGB model (model zoo, deeplabv3/metafile.yaml), as the reference starts
# from a trained segmentor: its plain keys load into `segmentor.*` and the first conv's weight is
# padded with a zero label channel. Set load_from=None to start from ImageNet weights instead.
load_from = 'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3/deeplabv3_r101-d8_512x512_80k_ade20k/deeplabv3_r101-d8_512x512_80k_ade20k_20200615_021256-d89c7fa4.pth'

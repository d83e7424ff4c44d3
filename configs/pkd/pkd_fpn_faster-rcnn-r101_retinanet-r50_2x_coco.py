# COCO template: PKD (Cao et al., NeurIPS 2022) across detector types, Faster R-CNN R101 2x ->
# RetinaNet R50 2x. FPN levels 0-3 of both: teacher P2-P5 vs student P3-P6, each student map
# bilinearly resized to the teacher's size (2x), weight 6 for an R-CNN teacher, as MMRazor's
# heterogeneous pkd_fpn_mask_rcnn_swin_retina_r50_2x config (whose teacher is a Swin-S Mask
# R-CNN). The pair and its teacher checkpoint: _base_.
_base_ = ['../_base_/distill/faster-rcnn-r101_retinanet-r50_2x_coco.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], resize=True,
         loss=dict(type='densekd.PKDLoss', loss_weight=6.0)),
])

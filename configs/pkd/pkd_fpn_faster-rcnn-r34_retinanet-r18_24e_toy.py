# PKD (Cao et al., NeurIPS 2022) across detector types: two-stage Faster R-CNN R34-w32 teacher
# -> one-stage RetinaNet R18-w16 student, toy set. FPN levels 0-3 of both: teacher P2-P5 vs
# student P3-P6, each student map bilinearly resized to the teacher's size (2x), as MMRazor's
# heterogeneous pkd_fpn_mask_rcnn_swin_retina_r50_2x config (neck outputs 0-3 of both,
# PKDLoss resize_stu=True, weight 6 for an R-CNN teacher).
_base_ = ['../_base_/distill/faster-rcnn-r34_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.FeatureMimic', name='fpn_pkd', student='neck', teacher='neck',
         levels=[0, 1, 2, 3], resize=True,
         loss=dict(type='densekd.PKDLoss', loss_weight=6.0)),
])

# CAKD with multi-view robust training: the PCA + GL config plus a multi-view generator
# (random masking / crop of the GL-projected student features, probability 0.5) and a
# discriminator (GAP -> 3-layer MLP -> sigmoid) with its own optimiser. Each iteration one
# backward reaches the discriminator (its loss, on detached features) and the student and
# projectors (everything else) separately; then the discriminator steps, then the model
# (DistillationModel.update_from_losses with an OptimWrapperDict; under DDP
# DistillDistributedDataParallel).
_base_ = ['./cakd_pca-gl_s3_retinanet-swin-t32_retinanet-r18_24e_toy.py']

model = dict(components=[
    dict(type='densekd.CrossArchDistill', name='cakd', student='backbone', student_level=2,
         teacher_attn='backbone.stages.2.blocks.1.attn.w_msa.qkv',
         teacher_feat='backbone', teacher_level=2,
         pca=dict(p=0.5, replace='matrix', value='relation', loss_weight=100.0),
         gl=dict(group_size=(4, 4), sharing='phase', loss_weight=1.0),
         mvg=dict(prob=0.5, views=('mask', 'crop'), hidden_channels=256, loss_weight=0.1,
                  disc_weight=1.0)),
])
optim_wrapper = dict(
    _delete_=True,
    constructor='DiscriminatorOptimWrapperConstructor',
    model=dict(
        type='OptimWrapper',
        optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
        clip_grad=dict(max_norm=35, norm_type=2)),
    discriminator=dict(
        type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999))))

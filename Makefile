# densekd developer entry points. `make test` is what CI runs (.ci/run).
#
#   make install        create .venv, build/install mmcv with ops, install densekd
#   make install-test   same + pytest/ruff
#   make test           lint + unit tests (PYTEST_ARGS="-k foo -x" to narrow)
#   make lint / lint-fix ruff check (with --fix: sorts/wraps imports the ruff way)
#   make data           generate the toy dataset under data/toy
#   make demo / bench   toy distillation demo / benchmark
#   make census         kernel ops and host syncs each method adds (benchmarks/census.md)
#   make install-keep-torch TORCH_PYTHON=/path/to/env/bin/python
#                       GPU machines: install into that environment, keeping its torch
#   make results        every method on the toy sets, 3 seeds (hours on 2 cores; resumable)

PYTHON      ?= python3
VENV        := .venv
VPY         := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: install install-test install-keep-torch data test lint lint-fix demo bench census \
	results clean

install:
	$(PYTHON) tools/install_env.py

install-test:
	$(PYTHON) tools/install_env.py --tests

TORCH_PYTHON ?=
install-keep-torch:
	@test -n "$(TORCH_PYTHON)" || { echo 'usage: make install-keep-torch TORCH_PYTHON=/path/to/env/bin/python'; exit 2; }
	$(PYTHON) tools/install_env.py --python $(TORCH_PYTHON) --tests

data: install
	$(VPY) tools/make_toy_data.py

lint: install-test
	$(VENV)/bin/ruff check .

# auto-fix what ruff can (import order/wrapping, unused imports)
lint-fix: install-test
	$(VENV)/bin/ruff check --fix .

test: install-test
	$(VENV)/bin/ruff check .
	$(VPY) -m pytest tests -q $(PYTEST_ARGS)

demo: install
	$(VPY) tools/demo.py

BENCH_CONFIGS := configs/cwd/cwd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/mgd/mgd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/fgd/fgd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/pkd/pkd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/gid/gid_retinanet-r101_retinanet-r50_1x_coco.py \
	configs/fitnet/fitnet_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/mgd/mgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/fgd/fgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/pkd/pkd_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/gid/gid_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/pixel_kd/pixel-kd_logits_pspnet-r34_pspnet-r18_1k_toy.py \
	configs/cwd/cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py \
	configs/mgd/mgd_layer4_pspnet-r34_pspnet-r18_1k_toy.py

# DETRDistill, LAD, cross-architecture KD and GID on an RPN, with the FGD / GID
# toy configs again and toy CWD as a control, in one interleaved run
BENCH_CONFIGS_MORE := configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/fgd/fgd_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/gid/gid_retinanet-r34_retinanet-r18_24e_toy.py \
	configs/gid/gid_rpn_faster-rcnn-r34_faster-rcnn-r18_24e_toy.py \
	configs/detr_distill/detr-distill-logits_deformable-detr-r34_deformable-detr-r18_50e_toy.py \
	configs/detr_distill/detr-distill-feature_deformable-detr-r34_deformable-detr-r18_50e_toy.py \
	configs/detr_distill/detr-distill-query_deformable-detr-r34_deformable-detr-r18_50e_toy.py \
	configs/detr_distill/detr-distill_deformable-detr-r34_deformable-detr-r18_50e_toy.py \
	configs/detr_distill/detr-distill_dino-r34_dino-r18_24e_toy.py \
	configs/detr_distill/detr-distill_conditional-detr-r34_conditional-detr-r18_50e_toy.py \
	configs/lad/lad_cwd_logits_pspnet-r34_pspnet-r18_1k_toy.py \
	configs/cross_arch/fitnet_fpn_retinanet-swin-t32_retinanet-r18_24e_toy.py \
	configs/cross_arch/cakd_pca-gl_s3_retinanet-swin-t32_retinanet-r18_24e_toy.py \
	configs/cross_arch/cakd_pca-gl-mvg_s3_retinanet-swin-t32_retinanet-r18_24e_toy.py \
	configs/cross_arch/scalekd_s3-s4_retinanet-swin-t32_retinanet-r18_24e_toy.py \
	configs/cross_arch/cakd_pca-gl_mit-s4_segformer-mit-b0_pspnet-r18_1k_toy.py \
	configs/cross_arch/scalekd_s3-s4_segformer-mit-b0_pspnet-r18_1k_toy.py

# DETRDistill on its paper pair with and without the query-prior group, in one interleaved run
BENCH_CONFIGS_DETR_PARTS := configs/detr_distill/detr-distill_deformable-detr-r101_deformable-detr-r50_50e_coco.py \
	configs/detr_distill/detr-distill-logits-feature_deformable-detr-r101_deformable-detr-r50_50e_coco.py

# DETRDistill's query-prior group against a student carrying the group's queries
BENCH_CONFIGS_DETR_GROUP := configs/detr_distill/detr-distill-query_deformable-detr-r34_deformable-detr-r18_50e_toy.py \
	configs/detr_distill/detr-distill_deformable-detr-r34_deformable-detr-r18_50e_toy.py \
	configs/detr_distill/detr-distill_dino-r34_dino-r18_24e_toy.py \
	configs/detr_distill/detr-distill_conditional-detr-r34_conditional-detr-r18_50e_toy.py

# the cross-architecture methods on their paper-scale templates (teachers random, 256 px like
# the rest; DETRDistill's paper pair: BENCH_CONFIGS_DETR_PARTS)
BENCH_CONFIGS_PAPER := configs/cross_arch/cakd_pca-gl_s3_mask-rcnn-swin-t_retinanet-r50_1x_coco.py \
	configs/cross_arch/scalekd_s3-s4_mask-rcnn-swin-t_retinanet-r50_1x_coco.py \
	configs/cross_arch/cakd_pca-gl_s2_upernet-swin-t_pspnet-r50_80k_ade20k.py \
	configs/cross_arch/scalekd_s3-s4_upernet-swin-t_pspnet-r50_80k_ade20k.py

bench: install
	$(VPY) tools/benchmark.py $(BENCH_CONFIGS) --batch 2 --size 256 --iters 20 \
		--loss-mode --components --memory --md benchmarks/results.md --json benchmarks/results.json
	$(VPY) tools/benchmark.py configs/cwd/cwd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
		configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py --batch 2 --size 256 \
		--iters 20 --speedups --md benchmarks/speedups.md --json benchmarks/speedups.json
	$(VPY) tools/benchmark.py configs/cwd/cwd_fpn_retinanet-r34_retinanet-r18_24e_toy.py \
		--batch 2 8 --size 128 256 512 --iters 10 --memory \
		--md benchmarks/scaling.md --json benchmarks/scaling.json
	$(VPY) benchmarks/dist_scaling.py --md benchmarks/dist_scaling.md
	$(VPY) tools/benchmark.py $(BENCH_CONFIGS_MORE) --batch 2 --size 256 --iters 10 \
		--loss-mode --components --memory --md benchmarks/results_more.md --json benchmarks/results_more.json
	$(VPY) tools/benchmark.py $(BENCH_CONFIGS_PAPER) --batch 2 --size 256 --iters 10 \
		--md benchmarks/results_paper.md --json benchmarks/results_paper.json
	$(VPY) tools/benchmark.py $(BENCH_CONFIGS_DETR_PARTS) --batch 2 --size 256 --iters 10 \
		--md benchmarks/results_detr_parts.md --json benchmarks/results_detr_parts.json
	$(VPY) tools/benchmark.py $(BENCH_CONFIGS_DETR_PARTS) --batch 2 --size 512 --iters 8 \
		--warmup 2 --md benchmarks/results_detr_parts_512.md \
		--json benchmarks/results_detr_parts_512.json
	$(VPY) benchmarks/detr_group_floor.py $(BENCH_CONFIGS_DETR_GROUP) --iters 10 \
		--md benchmarks/detr_group_floor.md

# every method's COCO / Cityscapes template at batch 2, 128 px (~17 min on 2 cores); rewrites
# the table in benchmarks/census.md (the CI guard's baseline: see that file)
CENSUS_CONFIGS := configs/cwd/cwd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/mgd/mgd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/pkd/pkd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/fgd/fgd_fpn_retinanet-r50_retinanet-r18_1x_coco.py \
	configs/gid/gid_retinanet-r101_retinanet-r50_1x_coco.py \
	configs/gid/gid_rpn_faster-rcnn-r101_faster-rcnn-r50_2x_coco.py \
	configs/cross_arch/cakd_pca-gl_s3_mask-rcnn-swin-t_retinanet-r50_1x_coco.py \
	configs/cross_arch/scalekd_s3-s4_mask-rcnn-swin-t_retinanet-r50_1x_coco.py \
	configs/detr_distill/detr-distill_deformable-detr-r101_deformable-detr-r50_50e_coco.py \
	configs/detr_distill/detr-distill-logits-feature_deformable-detr-r101_deformable-detr-r50_50e_coco.py \
	configs/cwd/cwd_logits_pspnet-r101_pspnet-r18_80k_cityscapes.py \
	configs/pixel_kd/pixel-kd_logits_pspnet-r101_pspnet-r18_80k_cityscapes.py \
	configs/mgd/mgd_layer4_pspnet-r101_pspnet-r18_80k_cityscapes.py \
	configs/lad/lad_cwd_logits_pspnet-r101_pspnet-r18_80k_cityscapes.py

census: install
	$(VPY) tools/census.py $(CENSUS_CONFIGS) --batch 2 --size 128 --top 8 --md benchmarks/census.md

SEEDS ?= 0 1 2
results: install
	$(VPY) tools/toy_results.py det --seeds $(SEEDS) --md configs/RESULTS_toy_det.md
	$(VPY) tools/toy_results.py seg --seeds $(SEEDS) --md configs/RESULTS_toy_seg.md

# Removes build artefacts and caches; keeps .venv and the mmcv wheel cache
# (~/.cache/densekd). `rm -rf .venv` for a from-scratch install.
clean:
	rm -rf build dist work_dirs .pytest_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print | xargs rm -rf

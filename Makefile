# gpen-studio: the two commands of the README.
#   make run    set everything up, build, start gpen-studio (ARGS="..." passes arguments; none opens
#               the desktop window, whose runtime libraries are installed first when missing)
#   make test   warn when the disk is short, set everything up, check formatting and clippy (make
#               lint), build, run the whole test suite, then build the .deb and check it installed
#               (packaging/check-deb.sh: dpkg into a private root, run the installed binary)
#   make deb    only build target/debian/gpen-studio_<version>-1_amd64.deb
# Set-up is idempotent: system packages, libtorch 2.13.0 from PyPI into .libtorch/ (git-ignored),
# and the MTCNN weights from the facenet-pytorch 2.6.0 wheel into models/mtcnn/.

TORCH_VERSION := 2.13.0
FACENET_VERSION := 2.6.0
PYTHON ?= python3
LIBTORCH_STAMP := .libtorch/installed-torch-$(TORCH_VERSION)
MTCNN_WEIGHTS := models/mtcnn/pnet.pt models/mtcnn/rnet.pt models/mtcnn/onet.pt
ARGS ?=

.PHONY: run test disk-check lint setup system-deps gui-deps test-deps package-deps build deb deb-check bench clean-setup

run: setup gui-deps
	cargo run --release -- $(ARGS)

test: disk-check setup test-deps lint
	cargo test --release
	$(MAKE) deb-check

# A full disk shows up late and obscurely (the linker dies with a bus error), so say it first. A warning,
# not a failure: the peak (README: about 14 GB) depends on whether $TMPDIR shares this disk.
disk-check:
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$free" -lt 14 ]; then \
	  echo "warning: $$free GB free here; a first make test needs about 14 GB (README, 'The two commands')" >&2; fi

# The code's habits, checked before the tests: formatting (rustfmt.toml) and clippy with every lint
# an error (a lint allowed at its spot says why). Both come with rustup's default profile.
lint: setup
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings

build: setup
	cargo build --release

setup: system-deps $(LIBTORCH_STAMP) $(MTCNN_WEIGHTS)

system-deps:
	@packaging/install-system-deps.sh

gui-deps:
	@packaging/install-system-deps.sh --gui

# Slurm and MUNGE for the cluster test (tests/cluster_slurm), only for `make test`.
test-deps:
	@packaging/install-system-deps.sh --test

package-deps:
	@packaging/install-system-deps.sh --package

deb: build package-deps
	packaging/build-deb.sh

# The package depends on the window's runtime libraries, so dpkg wants them installed.
deb-check: deb gui-deps
	packaging/check-deb.sh

# libtorch comes from the torch wheel (the CUDA 13 build; its NVIDIA runtime wheels are needed even
# on the CPU because libtorch_cpu.so links libcudart). Installed into a scratch folder and moved
# into place, so an interrupted download never looks finished. --no-cache-dir: the wheels (~4 GB) are
# installed once, and pip's cache would keep a second copy of them on CI's disk.
$(LIBTORCH_STAMP):
	rm -rf .libtorch/site.partial
	mkdir -p .libtorch
	$(PYTHON) -m pip install --quiet --no-input --disable-pip-version-check --no-warn-script-location --no-cache-dir \
		--target .libtorch/site.partial torch==$(TORCH_VERSION)
	rm -rf .libtorch/site
	mv .libtorch/site.partial .libtorch/site
	touch $@

# P-Net, R-Net and O-Net weights ship inside the facenet-pytorch wheel (MIT licence).
$(MTCNN_WEIGHTS) &:
	rm -rf .libtorch/wheels && mkdir -p .libtorch/wheels models/mtcnn
	$(PYTHON) -m pip download --quiet --no-input --disable-pip-version-check --no-cache-dir --no-deps \
		--only-binary=:all: -d .libtorch/wheels facenet-pytorch==$(FACENET_VERSION)
	$(PYTHON) packaging/extract_mtcnn.py .libtorch/wheels/facenet_pytorch-$(FACENET_VERSION)-*.whl models/mtcnn

bench: setup
	cargo run --release -- bench generator --config bfr-512 --random-weights --batch 1,2,4 --device cpu

clean-setup:
	rm -rf .libtorch $(MTCNN_WEIGHTS)

# azure_flex.vmss: developer entry points. Everything the project needs is installed by these
# targets into .venv (and .venv-oldsdk for the older SDK matrix entry: azure.azcollection's SDK pins
# under ansible-core 2.16); nothing by hand.
#
#   make demo       set everything up, start the ARM emulator, run the rolling restart against it
#   make test       every check: sanity, unit tests, emulator tests, integration (both matrix entries),
#                   ansible-lint, molecule
#   make emulator   run the emulator in the foreground (SCENARIO=file to pick a scenario)
#   make bench      this collection, azure.azcollection and the Azure CLI side by side (long; as root);
#                   writes docs/performance.md and docs/rolling-timeline.png

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
OLD_VENV := .venv-oldsdk
VPY := $(CURDIR)/$(VENV)/bin/python
OLD_VPY := $(CURDIR)/$(OLD_VENV)/bin/python
COLLECTIONS := $(CURDIR)/build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/azure_flex/vmss
EMU := cd tests/emulator &&
SCENARIO ?=
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR ?= 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv venv-oldsdk collection emulator demo test sanity units test-emulator \
        integration integration-oldsdk integrations lint molecule clean bench bench-venvs bench-selftest

help:
	@sed -n '2,13p' Makefile

$(VENV)/.installed: requirements.txt tests/requirements-dev.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements.txt -r tests/requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The older SDK set (azure.azcollection's pins) with the same test tools.
$(OLD_VENV)/.installed: tests/requirements-oldsdk.txt tests/requirements-dev.txt
	test -x $(OLD_VPY) || $(PYTHON) -m venv $(OLD_VENV)
	$(OLD_VPY) -m pip install -q --upgrade pip
	$(OLD_VPY) -m pip install -q -r tests/requirements-oldsdk.txt -r tests/requirements-dev.txt
	touch $@

venv-oldsdk: $(OLD_VENV)/.installed

# ansible finds the collection through ANSIBLE_COLLECTIONS_PATH=build/collections, a link made here and
# never committed (build/ is ignored): it is checked on every run, so it always points at this checkout.
collection:
	@mkdir -p $(dir $(COLLECTION_LINK))
	@if [ "$$(readlink $(COLLECTION_LINK) 2>/dev/null)" != "$(CURDIR)" ]; then \
	    rm -rf $(COLLECTION_LINK) && ln -s $(CURDIR) $(COLLECTION_LINK) && echo "linked $(COLLECTION_LINK) -> $(CURDIR)"; fi

emulator: venv
	$(EMU) $(VPY) -m armemu --state-dir $(CURDIR)/.emulator $(if $(SCENARIO),--scenario $(abspath $(SCENARIO)))

# The rolling restart role against the demo scenario (12 members, 3 fault domains), batch by batch.
# DEMO_ARGS passes more ansible-playbook arguments, e.g. DEMO_ARGS="-e demo_batch_by=fault_domain" or "--check".
demo: venv collection
	$(EMU) $(VPY) -m armemu.launcher run --state-dir $(CURDIR)/.emulator \
	    $(if $(SCENARIO),--scenario $(abspath $(SCENARIO))) -- \
	    $(CURDIR)/$(VENV)/bin/ansible-playbook -e ansible_python_interpreter=$(VPY) $(DEMO_ARGS) $(CURDIR)/playbooks/demo.yml

test: sanity units test-emulator bench-selftest integrations lint molecule

# make bench: each tool in its own venv under .bench/ (ignored by git; kept between runs).
# The peer: the ansible package from PyPI (which ships azure.azcollection) plus azure.azcollection's own
# requirements file from inside that package, unmodified. The CLI: azure-cli. matplotlib draws the timeline.
BENCH := .bench
PEER_COLLECTION = $(BENCH)/venv-peer/lib/python3*/site-packages/ansible_collections/azure/azcollection
$(BENCH)/venv-peer/.installed:
	test -x $(BENCH)/venv-peer/bin/python || $(PYTHON) -m venv $(BENCH)/venv-peer
	$(BENCH)/venv-peer/bin/pip install -q --upgrade pip
	$(BENCH)/venv-peer/bin/pip install -q ansible
	$(BENCH)/venv-peer/bin/pip install -q -r $$(ls -d $(PEER_COLLECTION))/requirements.txt
	touch $@

$(BENCH)/venv-cli/.installed:
	test -x $(BENCH)/venv-cli/bin/python || $(PYTHON) -m venv $(BENCH)/venv-cli
	$(BENCH)/venv-cli/bin/pip install -q --upgrade pip
	$(BENCH)/venv-cli/bin/pip install -q azure-cli
	touch $@

$(BENCH)/venv-plot/.installed:
	test -x $(BENCH)/venv-plot/bin/python || $(PYTHON) -m venv $(BENCH)/venv-plot
	$(BENCH)/venv-plot/bin/pip install -q matplotlib
	touch $@

bench-venvs: $(BENCH)/venv-peer/.installed $(BENCH)/venv-cli/.installed $(BENCH)/venv-plot/.installed

# BENCH_REPS (3), BENCH_SLOW_REPS (1), BENCH_SCALE_REPS (3), BENCH_ONLY=row,row (tests/bench/bench.py --help).
bench: venv collection bench-venvs
	$(VPY) tests/bench/bench.py

# The harness's pure parts (scenarios, request counting, statistics, timeline segments, the report): seconds.
bench-selftest: venv
	$(VENV)/bin/ruff check --config tests/emulator/ruff.toml tests/bench
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/bench

# Both integration runs at once (each has its own emulator; output is printed per run when it ends).
integrations: venv venv-oldsdk collection
	$(MAKE) --no-print-directory --output-sync=target -j2 integration integration-oldsdk

# ansible-lint (production profile, .ansible-lint) on the roles, playbooks and molecule scenarios.
lint: venv collection
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint roles/ playbooks/ extensions/molecule/

# The molecule scenarios (extensions/molecule): each starts and stops its own ARM emulator.
molecule: venv collection
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/molecule test --all

# tests/emulator is a separate test application, not collection content (galaxy.yml build_ignore):
# ansible-test checks the collection; ruff checks the emulator (test-emulator).
sanity: venv
	tests/sanity/run.sh --exclude tests/emulator/ --exclude tests/bench/

units: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit

test-emulator: venv
	$(VENV)/bin/ruff check tests/emulator
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/emulator/tests

integration: venv collection
	tests/integration/run.sh $(VPY)

integration-oldsdk: venv-oldsdk collection
	tests/integration/run.sh $(OLD_VPY)

clean:
	rm -rf build tests/output .emulator .pytest_cache

# azure_flex.vmss: developer entry points. Everything the project needs is installed by these
# targets into .venv (and .venv-oldsdk for the older SDK matrix entry: azure.azcollection's SDK pins
# under ansible-core 2.16); nothing by hand.
#
#   make demo       set everything up, start the ARM emulator, run the rolling restart against it
#   make test       every check: sanity, unit tests, emulator tests, integration (both matrix entries),
#                   ansible-lint, molecule, the fault suite, the demo's job output
#   make emulator   run the emulator in the foreground (SCENARIO=file to pick a scenario)
#   make bench      this collection, azure.azcollection and the Azure CLI side by side (long; as root);
#                   writes docs/performance.md and docs/rolling-timeline.png

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
OLD_VENV := .venv-oldsdk
VPY := $(CURDIR)/$(VENV)/bin/python
OLD_VPY := $(CURDIR)/$(OLD_VENV)/bin/python
SHARED_VENV := .venv-shared
PUBLISH_VENV := .venv-publish
SHARED_VPY := $(CURDIR)/$(SHARED_VENV)/bin/python
COLLECTIONS := $(CURDIR)/build/collections
COLLECTION_LINK := $(COLLECTIONS)/ansible_collections/azure_flex/vmss
EMU := cd tests/emulator &&
SCENARIO ?=
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_FORCE_COLOR ?= 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv venv-oldsdk venv-shared integration-shared examples check-tree build publish-check collection emulator demo test sanity units test-emulator \
        integration integration-oldsdk integrations lint molecule faults demo-output clean bench bench-venvs bench-selftest

help:
	@sed -n '2,13p' Makefile

$(VENV)/.installed: requirements.txt tests/requirements-dev.txt tests/requirements-emulator.txt tests/requirements-newsdk.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements.txt -r tests/requirements-dev.txt -r tests/requirements-newsdk.txt
	touch $@

venv: $(VENV)/.installed

# The older SDK set (azure.azcollection's pins) with the same test tools.
$(OLD_VENV)/.installed: tests/requirements-oldsdk.txt tests/requirements-dev.txt tests/requirements-emulator.txt
	test -x $(OLD_VPY) || $(PYTHON) -m venv $(OLD_VENV)
	$(OLD_VPY) -m pip install -q --upgrade pip
	$(OLD_VPY) -m pip install -q -r tests/requirements-oldsdk.txt -r tests/requirements-dev.txt
	touch $@

venv-oldsdk: $(OLD_VENV)/.installed

# The shared execution environment: azure.azcollection's requirements (from the `ansible` package on PyPI,
# unmodified) and ours, in one venv, installed by one pip command as ansible-builder does.
$(SHARED_VENV)/.installed: requirements.txt tests/requirements-emulator.txt tests/utils/azcollection.py
	test -x $(SHARED_VPY) || $(PYTHON) -m venv $(SHARED_VENV)
	$(SHARED_VPY) -m pip install -q --upgrade pip
	$(SHARED_VPY) tests/utils/azcollection.py requirements $(SHARED_VENV)/azcollection-requirements.txt
	$(SHARED_VPY) -m pip install -q -r $(SHARED_VENV)/azcollection-requirements.txt -r requirements.txt \
	    -r tests/requirements-emulator.txt "ansible-core>=2.16" "pytest>=8.0"
	touch $@

venv-shared: $(SHARED_VENV)/.installed

# galaxy-importer, ansible-builder, antsibull-docs/-changelog and pandoc, for the publishing checks.
$(PUBLISH_VENV)/.installed: tests/publish/requirements.txt
	test -x $(PUBLISH_VENV)/bin/python || $(PYTHON) -m venv $(PUBLISH_VENV)
	$(PUBLISH_VENV)/bin/python -m pip install -q --upgrade pip
	$(PUBLISH_VENV)/bin/python -m pip install -q -r tests/publish/requirements.txt
	touch $@

# The release tarball (dist/), with the docsite written from docs/*.md, after every publishing check passed:
# galaxy-importer, antsibull-docs, antsibull-changelog lint, ansible-builder create.
build: $(PUBLISH_VENV)/.installed
	tests/publish/check.sh $(CURDIR)/$(PUBLISH_VENV)/bin $(CURDIR)/dist

publish-check: $(PUBLISH_VENV)/.installed
	tests/publish/check.sh $(CURDIR)/$(PUBLISH_VENV)/bin

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
# The demo's plays run on localhost only: Ansible's warnings about having no inventory say nothing here.
demo: export ANSIBLE_LOCALHOST_WARNING := False
demo: export ANSIBLE_INVENTORY_UNPARSED_WARNING := False
demo: venv collection
	$(EMU) $(VPY) -m armemu.launcher run --state-dir $(CURDIR)/.emulator \
	    $(if $(SCENARIO),--scenario $(abspath $(SCENARIO))) -- \
	    $(CURDIR)/$(VENV)/bin/ansible-playbook -e ansible_python_interpreter=$(VPY) $(DEMO_ARGS) $(CURDIR)/playbooks/demo.yml

test: check-tree sanity units test-emulator bench-selftest integrations examples lint molecule faults demo-output publish-check

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

# The demo's job output, checked: one line per batch, no FAILED - RETRYING / Unknown error / ...ignoring, and a stop
# that prints its reason at once and nothing of the batches after it (tests/bench/demo_output.py).
demo-output: venv collection
	$(VPY) tests/bench/demo_output.py

# The fault suite (tests/faults, docs/reliability.md): about a hundred cases against one emulator, a few
# minutes; prints the table "category | cases | held". FAULTS_ARGS passes options, e.g. --only lag.
faults: venv collection
	$(VENV)/bin/ruff check --config tests/emulator/ruff.toml tests/faults
	$(VPY) tests/faults/run.py $(FAULTS_ARGS)

# Only sources are tracked, and Ansible runs this checkout's code (not another one's through a stale link).
check-tree: venv collection
	tests/utils/check-tree.sh $(VPY)

# The integration runs at once (each has its own emulator; output is printed per run when it ends).
integrations: venv venv-oldsdk venv-shared collection
	$(MAKE) --no-print-directory --output-sync=target -j3 integration integration-oldsdk integration-shared

# ansible-lint (production profile, .ansible-lint) on the roles, playbooks and molecule scenarios.
# ansible-lint and molecule install the collection they find themselves in (ansible-compat) into Ansible's home,
# where a copy from another checkout or an older run would shadow this checkout's code: they get a home of
# their own under build/, emptied of any earlier copy before each run.
TOOL_ANSIBLE_HOME := $(CURDIR)/build/ansible-home

lint: venv collection
	rm -rf $(TOOL_ANSIBLE_HOME)/collections/ansible_collections/azure_flex
	ANSIBLE_HOME=$(TOOL_ANSIBLE_HOME) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/ansible-lint roles/ playbooks/ extensions/molecule/

# The molecule scenarios (extensions/molecule): each starts and stops its own ARM emulator.
molecule: venv collection
	rm -rf $(TOOL_ANSIBLE_HOME)/collections/ansible_collections/azure_flex
	ANSIBLE_HOME=$(TOOL_ANSIBLE_HOME) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(VENV)/bin/molecule test --all

# tests/emulator and tests/faults are separate test applications, not collection content (galaxy.yml
# build_ignore): ansible-test checks the collection; ruff checks them (test-emulator, faults).
sanity: venv
	tests/sanity/run.sh --exclude tests/emulator/ --exclude tests/faults/ --exclude tests/bench/

units: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit

# The emulator's tests under the older SDK set run too (test_old_sdk.py runs them with .venv-oldsdk's interpreter).
test-emulator: venv venv-oldsdk
	$(VENV)/bin/ruff check tests/emulator
	OLDSDK_PYTHON=$(OLD_VPY) $(VENV)/bin/pytest -q -p no:cacheprovider tests/emulator/tests

integration: venv collection
	tests/integration/run.sh $(VPY)

integration-oldsdk: venv-oldsdk collection
	tests/integration/run.sh $(OLD_VPY)

# The module EXAMPLES and the example playbooks, run as documented against a fresh emulator.
examples: venv collection
	$(EMU) $(VPY) -m armemu.launcher run -- $(VPY) -m pytest -q -p no:cacheprovider $(CURDIR)/tests/examples

integration-shared: venv-shared collection
	tests/shared_env/run.sh $(SHARED_VPY)

clean:
	rm -rf build dist tests/output .emulator .pytest_cache

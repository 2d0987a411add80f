# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""_tags: every tag write is one Tags API request on the resource's current tags, through the real SDK."""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils._auth import CloudEndpoints
from ansible_collections.azure_flex.vmss.plugins.module_utils._clients import AzureClients, import_client_class
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import AzureFlexError
from ansible_collections.azure_flex.vmss.plugins.module_utils._resilience import Deadline
from ansible_collections.azure_flex.vmss.plugins.module_utils._tags import (
    CODE_TAGS_KEPT_CHANGING,
    delete_tags,
    merge_tags,
    read_tags,
    replace_tags,
)
from ansible_collections.azure_flex.vmss.tests.unit.utils.azure_fakes import (
    BASE_URL,
    SUBSCRIPTION_ID as SUB,
    FakeCredential,
    arm_error,
    reply,
    scripted_transport,
)

CLOUD = CloudEndpoints("Test", BASE_URL, "https://login.test.invalid", "https://arm.test.invalid/")
VM = "/subscriptions/%s/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/web_1" % SUB
TAGS_PATH = VM + "/providers/Microsoft.Resources/tags/default"


class TagsArm:
    """The Tags API of one VM. ``meddle(tags)`` runs before each PATCH: another writer changing tags meanwhile."""

    def __init__(self, tags, by_value=True, meddle=None, fail=None, status=200):
        self.tags = dict(tags)
        self.by_value = by_value
        self.meddle = meddle
        self.fail = fail
        self.status = status
        self.bodies = []
        self.paths = []

    def __call__(self, request):
        path = urlsplit(request.url).path
        self.paths.append(path)
        if path != TAGS_PATH:
            return reply(404, arm_error("NoRoute", path))
        if request.method == "GET":
            return reply(200, {"properties": {"tags": self.tags}})
        if self.fail:
            return reply(*self.fail)
        if self.meddle:
            self.meddle(self.tags)
        body = request.json()
        self.bodies.append(body)
        given = body["properties"]["tags"]
        if body["operation"] == "Merge":
            self.tags.update(given)
        elif body["operation"] == "Replace":
            self.tags = dict(given)
        else:
            self.tags = {name: value for name, value in self.tags.items()
                         if name not in given or (self.by_value and given[name] != value)}
        return reply(self.status, {"id": TAGS_PATH, "name": "default", "properties": {"tags": self.tags}})


def clients_for(arm):
    transport, _adapter = scripted_transport(arm)
    deadline = Deadline(30)

    def importer(service):
        return functools.partial(import_client_class(service), transport=transport)

    return AzureClients(FakeCredential(), SUB, CLOUD, deadline=deadline, polling_interval=1,
                        client_importer=importer), deadline


def test_merge_sends_only_the_new_tags_and_returns_what_azure_reports():
    arm = TagsArm({"app": "web", "other": "kept"})
    clients, deadline = clients_for(arm)

    after = merge_tags(clients, VM, {"run": "r1"}, deadline)

    assert arm.bodies == [{"operation": "Merge", "properties": {"tags": {"run": "r1"}}}]
    assert after == {"app": "web", "other": "kept", "run": "r1"}
    # The scope goes into the path as is, without a doubled slash.
    assert arm.paths == [TAGS_PATH]


def test_replace_is_one_request():
    arm = TagsArm({"app": "web"})
    clients, deadline = clients_for(arm)

    assert replace_tags(clients, VM, {"only": "x"}, deadline) == {"only": "x"}
    assert arm.bodies == [{"operation": "Replace", "properties": {"tags": {"only": "x"}}}]


def test_delete_names_the_values_it_read_and_case_insensitively():
    arm = TagsArm({"app": "web", "Run": "r1"})
    clients, deadline = clients_for(arm)

    assert delete_tags(clients, VM, ["RUN", "absent"], deadline, current={"app": "web", "Run": "r1"}) == {"app": "web"}
    assert arm.bodies == [{"operation": "Delete", "properties": {"tags": {"Run": "r1"}}}]


def test_delete_of_a_tag_whose_value_another_writer_changed_is_repeated_with_the_new_value():
    changes = iter(["r2"])

    def meddle(tags):
        value = next(changes, None)
        if value:
            tags["run"] = value

    arm = TagsArm({"app": "web", "run": "r1"}, meddle=meddle)
    clients, deadline = clients_for(arm)

    assert delete_tags(clients, VM, ["run"], deadline, current={"app": "web", "run": "r1"}) == {"app": "web"}
    assert [body["properties"]["tags"] for body in arm.bodies] == [{"run": "r1"}, {"run": "r2"}]


def test_delete_gives_up_after_a_bounded_number_of_attempts_and_says_why():
    counter = iter(range(100))

    def meddle(tags):
        tags["run"] = "v%d" % next(counter)

    arm = TagsArm({"run": "r1"}, meddle=meddle)
    clients, deadline = clients_for(arm)

    with pytest.raises(AzureFlexError) as info:
        delete_tags(clients, VM, ["run"], deadline, current={"run": "r1"})
    assert info.value.code == CODE_TAGS_KEPT_CHANGING
    assert len(arm.bodies) == 3


def test_nothing_to_delete_sends_nothing_and_delete_reads_when_not_told():
    arm = TagsArm({"app": "web"})
    clients, deadline = clients_for(arm)

    assert delete_tags(clients, VM, ["run"], deadline) == {"app": "web"}
    assert arm.bodies == [] and read_tags(clients, VM) == {"app": "web"}


def test_a_refusal_carries_the_arm_code_status_and_request_id():
    arm = TagsArm({}, fail=(409, arm_error("ScopeLocked", "The scope is locked."), {"x-ms-request-id": "rid-7"}))
    clients, deadline = clients_for(arm)

    with pytest.raises(AzureFlexError) as info:
        merge_tags(clients, VM, {"a": "1"}, deadline)
    assert (info.value.code, info.value.status, info.value.request_id) == ("ScopeLocked", 409, "rid-7")
    assert re.search(r"Failed to merge tags on web_1", info.value.msg)


def test_not_waiting_still_reports_an_answer_given_at_once():
    arm = TagsArm({"app": "web"})
    clients, deadline = clients_for(arm)

    assert merge_tags(clients, VM, {"a": "1"}, deadline, wait=False) == {"app": "web", "a": "1"}

"""Response shapes compared with the official examples in Azure/azure-rest-api-specs.

Each test names the example file it follows (folders as in facts §13) and checks the emulator's
response against the keys, nesting, value types and literal values that example shows. Known,
deliberate differences are listed in the test's docstring.
"""

from __future__ import annotations

import re

import pytest

from _support import (COMPUTE_API, FLEX, GRAPH_API, JUMPBOX, LOCKS_API, RG, flex_members, vm_id, vmss_id,
                      wait_until)

C2 = "specification/compute/resource-manager/Microsoft.Compute/Compute/stable/2026-04-01/examples/"


def keys(obj):
    return set(obj) if isinstance(obj, dict) else set()


STATUS_KEYS = {"code", "level", "displayStatus"}


def test_vm_get_instance_view(sdk, raw):
    """C2 virtualMachineExamples/VirtualMachine_Get_InstanceView.json (GET .../instanceView).

    Not emulated: bootDiagnostics, patchStatus (nothing configures them).
    """
    member = flex_members(sdk.compute(), sdk.subscription_id)[0]
    body = raw("GET", vm_id(sdk.subscription_id, member) + "/instanceView", api_version=COMPUTE_API).json()
    example_top = {"platformUpdateDomain", "platformFaultDomain", "computerName", "osName", "osVersion", "vmAgent",
                   "disks", "bootDiagnostics", "extensions", "hyperVGeneration", "patchStatus", "isVMInStandbyPool",
                   "statuses"}
    assert example_top - {"bootDiagnostics", "patchStatus"} <= keys(body)
    assert isinstance(body["platformUpdateDomain"], int) and isinstance(body["platformFaultDomain"], int)
    assert body["isVMInStandbyPool"] is False
    agent = body["vmAgent"]
    assert keys(agent) == {"vmAgentVersion", "statuses", "extensionHandlers"}
    assert keys(agent["statuses"][0]) == STATUS_KEYS | {"message", "time"}
    assert agent["statuses"][0]["code"] == "ProvisioningState/succeeded"
    assert agent["statuses"][0]["displayStatus"] == "Ready"
    handler = agent["extensionHandlers"][0]
    assert keys(handler) == {"type", "typeHandlerVersion", "status"}
    assert keys(handler["status"]) == STATUS_KEYS
    assert handler["type"] == "Microsoft.ManagedServices.ApplicationHealthLinux"
    disk = body["disks"][0]
    assert keys(disk) == {"name", "statuses"}
    assert keys(disk["statuses"][0]) == STATUS_KEYS | {"time"}
    assert disk["statuses"][0]["displayStatus"] == "Provisioning succeeded"
    ext = body["extensions"][0]
    assert {"name", "type", "typeHandlerVersion", "statuses"} <= keys(ext)
    assert ext["statuses"][0]["displayStatus"] == "Provisioning succeeded"
    # Top-level statuses: provisioning (with time) then power (without).
    prov, pwr = body["statuses"]
    assert keys(prov) == STATUS_KEYS | {"time"}
    assert prov == dict(prov, code="ProvisioningState/succeeded", level="Info",
                        displayStatus="Provisioning succeeded")
    assert pwr == {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$", prov["time"])


def test_vm_get(sdk, raw):
    """C2 virtualMachineExamples/VirtualMachine_Get.json.

    Not emulated: availabilitySet, proximityPlacementGroup, applicationProfile, diagnosticsProfile,
    extensionsTimeBudget, userData (none of them configured by the scenario).
    """
    member = flex_members(sdk.compute(), sdk.subscription_id)[0]
    body = raw("GET", vm_id(sdk.subscription_id, member), api_version=COMPUTE_API).json()
    assert {"name", "id", "type", "location", "tags", "etag", "properties", "resources", "managedBy"} <= keys(body)
    assert body["type"] == "Microsoft.Compute/virtualMachines"
    assert re.match(r'^"\d+"$', body["etag"])
    assert body["managedBy"] == vmss_id(sdk.subscription_id, FLEX)
    props = body["properties"]
    assert {"vmId", "hardwareProfile", "storageProfile", "osProfile", "networkProfile", "provisioningState",
            "timeCreated"} <= keys(props)
    assert keys(props["hardwareProfile"]) == {"vmSize"}
    storage = props["storageProfile"]
    assert {"imageReference", "osDisk", "dataDisks"} <= keys(storage)
    assert {"publisher", "offer", "sku", "version"} <= keys(storage["imageReference"])
    os_disk = storage["osDisk"]
    assert {"osType", "name", "createOption", "caching", "managedDisk", "diskSizeGB"} <= keys(os_disk)
    assert keys(os_disk["managedDisk"]) == {"storageAccountType", "id"}
    assert os_disk["managedDisk"]["id"].endswith("/providers/Microsoft.Compute/disks/" + os_disk["name"])
    assert {"computerName", "adminUsername", "secrets"} <= keys(props["osProfile"])
    assert props["osProfile"]["secrets"] == []
    assert all("id" in nic for nic in props["networkProfile"]["networkInterfaces"])
    assert props["provisioningState"] == "Succeeded"
    # The VM lists its extensions in "resources", with the extension resource's shape.
    ext = body["resources"][0]
    assert keys(ext) >= {"name", "id", "type", "location", "properties"}
    assert ext["type"] == "Microsoft.Compute/virtualMachines/extensions"
    assert {"autoUpgradeMinorVersion", "provisioningState", "publisher", "type", "typeHandlerVersion",
            "settings"} <= keys(ext["properties"])
    # A VM without extensions has no "resources".
    assert "resources" not in raw("GET", vm_id(sdk.subscription_id, JUMPBOX), api_version=COMPUTE_API).json()


def test_vm_create_in_flex_set_with_fault_domain(emu, sdk, raw):
    """C2 virtualMachineExamples/VirtualMachine_Create_InAVmssWithCustomerAssignedPlatformFaultDomain.json.

    The example's request (NIC omitted: Flex VMs here may have none) and its 201 response shape.
    """
    sub = sdk.subscription_id
    request = {"location": "eastus", "properties": {
        "hardwareProfile": {"vmSize": "Standard_D1_v2"},
        "storageProfile": {"imageReference": {"sku": "2016-Datacenter", "publisher": "MicrosoftWindowsServer",
                                              "version": "latest", "offer": "WindowsServer"},
                           "osDisk": {"caching": "ReadWrite", "managedDisk": {"storageAccountType": "Standard_LRS"},
                                      "name": "myVMosdisk", "createOption": "FromImage", "osType": "Windows"}},
        "osProfile": {"adminUsername": "azureuser", "computerName": "myVM", "adminPassword": "Pa55w.rd!Pa55"},
        "virtualMachineScaleSet": {"id": vmss_id(sub, FLEX)},
        "platformFaultDomain": 1}}
    reply = raw("PUT", vm_id(sub, "myVM"), body=request, api_version=COMPUTE_API)
    assert reply.status_code == 201
    body = reply.json()
    assert {"id", "type", "properties", "name", "location"} <= keys(body)
    props = body["properties"]
    assert props["provisioningState"] == "Creating"
    assert props["platformFaultDomain"] == 1
    assert props["virtualMachineScaleSet"] == {"id": vmss_id(sub, FLEX)}
    assert props["osProfile"]["secrets"] == [] and "adminPassword" not in props["osProfile"]
    assert props["storageProfile"]["dataDisks"] == []
    assert props["storageProfile"]["osDisk"]["osType"] == "Windows"
    assert props["storageProfile"]["osDisk"]["managedDisk"]["storageAccountType"] == "Standard_LRS"
    assert re.match(r"^[0-9a-f-]{36}$", props["vmId"])


def test_flex_scale_set_create(emu, sdk, raw):
    """C2 virtualMachineScaleSetExamples/VirtualMachineScaleSet_Create_WithSpotPlusPriorityFlex.json.

    The example's body (our subnet, capacity 2); the response echoes the model and adds uniqueId and
    provisioningState Creating. Difference: the emulator adds sku.tier.
    """
    sub = sdk.subscription_id
    subnet = "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/virtualNetworks/demo-vnet/subnets/" \
             "default" % (sub, RG)
    request = {"sku": {"capacity": 2, "name": "Mix"}, "location": "eastus", "properties": {
        "orchestrationMode": "Flexible", "platformFaultDomainCount": 1, "singlePlacementGroup": False,
        "virtualMachineProfile": {
            "storageProfile": {"imageReference": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-focal",
                                                  "sku": "20_04-lts-gen2", "version": "latest"},
                               "osDisk": {"createOption": "FromImage", "caching": "ReadWrite",
                                          "managedDisk": {"storageAccountType": "Standard_LRS"}}},
            "osProfile": {"computerNamePrefix": "spotplus", "adminUsername": "azureuser"},
            "networkProfile": {"networkInterfaceConfigurations": [{"name": "nic", "properties": {
                "primary": True, "enableIPForwarding": True, "enableAcceleratedNetworking": False,
                "ipConfigurations": [{"name": "ip", "properties": {
                    "subnet": {"id": subnet}, "primary": True, "applicationGatewayBackendAddressPools": [],
                    "loadBalancerBackendAddressPools": []}}]}}],
                "networkApiVersion": "2020-11-01"},
            "priority": "SpotPlus", "evictionPolicy": "Deallocate", "billingProfile": {"maxPrice": -1}},
        "priorityMixPolicy": {"baseRegularPriorityCount": 4, "regularPriorityPercentageAboveBase": 50},
        "skuProfile": {"vmSizes": [{"name": "Standard_D8s_v5"}, {"name": "Standard_D2s_v5"}],
                       "allocationStrategy": "CapacityOptimized"}}}
    reply = raw("PUT", vmss_id(sub, "spotplus"), body=request, api_version=COMPUTE_API)
    assert reply.status_code == 201
    body = reply.json()
    assert {"sku", "name", "properties", "location", "type", "id"} <= keys(body)
    assert body["sku"]["capacity"] == 2 and body["sku"]["name"] == "Mix"
    props = body["properties"]
    assert {"orchestrationMode", "platformFaultDomainCount", "singlePlacementGroup", "uniqueId",
            "virtualMachineProfile", "priorityMixPolicy", "skuProfile", "provisioningState"} <= keys(props)
    assert props["provisioningState"] == "Creating"
    assert props["virtualMachineProfile"]["priority"] == "SpotPlus"
    assert props["skuProfile"] == request["properties"]["skuProfile"]
    compute = sdk.compute()
    wait_until(lambda: compute.virtual_machine_scale_sets.get(RG, "spotplus").provisioning_state == "Succeeded")
    members = flex_members(compute, sub, "spotplus")
    assert len(members) == 2
    vm = compute.virtual_machines.get(RG, members[0])
    assert vm.priority == "SpotPlus" and vm.billing_profile.max_price == -1


def test_delete_instances(emu, sdk, raw):
    """C2 virtualMachineScaleSetExamples/VirtualMachineScaleSet_DeleteInstances_MaximumSet_Gen.json.

    Request {"instanceIds": [...]} with forceDeletion=true; responses 200 or 202 + location header.
    The emulator answers 202 with Location and Azure-AsyncOperation (real URLs, not the example's fake).
    """
    member = flex_members(sdk.compute(), sdk.subscription_id)[0]
    reply = raw("POST", vmss_id(sdk.subscription_id, FLEX) + "/delete?forceDeletion=true",
                body={"instanceIds": [member]}, api_version=COMPUTE_API)
    assert reply.status_code in (200, 202)
    assert reply.status_code == 202 and reply.headers["Location"].startswith("https://")
    assert reply.content == b""


@pytest.mark.parametrize("level", ["ReadOnly", "CanNotDelete"])
def test_lock_create_get_list_delete(sdk, raw, level):
    """Locks 2020-05-01 examples: ManagementLocks_CreateOrUpdateAtResourceLevel.json (201 then 200, body
    exactly {properties{level}, id, type, name}), ManagementLocks_GetAtScope.json,
    ManagementLocks_ListAtResourceGroupLevel.json ({"value": [...]}),
    ManagementLocks_DeleteAtResourceLevel.json (200 or 204)."""
    sub = sdk.subscription_id
    path = ("/subscriptions/%s/resourcegroups/%s/providers/Microsoft.Compute//virtualMachines/%s/providers/"
            "Microsoft.Authorization/locks/testlock" % (sub, RG, JUMPBOX))
    first = raw("PUT", path, body={"properties": {"level": level}}, api_version=LOCKS_API)
    second = raw("PUT", path, body={"properties": {"level": level}}, api_version=LOCKS_API)
    assert (first.status_code, second.status_code) == (201, 200)
    expected = {"properties": {"level": level}, "type": "Microsoft.Authorization/locks", "name": "testlock",
                "id": vm_id(sub, JUMPBOX) + "/providers/Microsoft.Authorization/locks/testlock"}
    assert first.json() == expected and second.json() == expected
    assert raw("GET", path, api_version=LOCKS_API).json() == expected
    listed = raw("GET", "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Authorization/locks" % (sub, RG),
                 api_version=LOCKS_API).json()
    assert listed == {"value": [expected]}
    assert raw("DELETE", path, api_version=LOCKS_API).status_code == 200
    assert raw("DELETE", path, api_version=LOCKS_API).status_code == 204


def _graph(raw, sdk, query):
    reply = raw("POST", "/providers/Microsoft.ResourceGraph/resources", api_version=GRAPH_API,
                body={"subscriptions": [sdk.subscription_id], "query": query,
                      "options": {"resultFormat": "objectArray"}})
    assert reply.status_code == 200
    body = reply.json()
    assert keys(body) == {"totalRecords", "count", "resultTruncated", "facets", "data"}
    assert body["resultTruncated"] == "false" and body["facets"] == []
    assert body["count"] == len(body["data"])
    return body["data"]


def test_graph_examples(sdk, raw):
    """Resource Graph 2021-03-01 examples, same queries: ResourcesBasicQuery.json, ResourcesFilterQuery.json,
    ResourcesSummarizeQuery.json, ResourcesComplexQuery.json, ResourcesPropertiesQuery.json.

    Difference: ResourcesPropertiesQuery.json names the count column "count" while ResourcesComplexQuery.json
    (and the service) use "count_"; the emulator uses "count_".
    """
    basic = _graph(raw, sdk, "Resources | project id, name, type, location, tags | limit 3")
    assert len(basic) == 3
    assert all(keys(row) == {"id", "name", "type", "location", "tags"} for row in basic)
    assert all(row["type"] == row["type"].lower() and isinstance(row["tags"], dict) for row in basic)
    filtered = _graph(raw, sdk, "Resources | project id, name, type, location | where type =~ "
                                "'Microsoft.Compute/virtualMachines' | limit 3")
    assert [row["type"] for row in filtered] == ["microsoft.compute/virtualmachines"] * 3
    summarized = _graph(raw, sdk, "Resources | project id, name, type, location | summarize by location")
    assert summarized == [{"location": "eastus"}]
    complex_ = _graph(raw, sdk, "Resources | project id, name, type, location | where type =~ "
                                "'Microsoft.Compute/virtualMachines' | summarize count() by location "
                                "| top 3 by count_")
    assert complex_ == [{"location": "eastus", "count_": 13}]
    properties = _graph(raw, sdk, "Resources | where type =~ 'Microsoft.Compute/virtualMachines' | summarize "
                                  "count() by tostring(properties.storageProfile.osDisk.osType)")
    assert properties == [{"properties_storageProfile_osDisk_osType": "Linux", "count_": 13}]

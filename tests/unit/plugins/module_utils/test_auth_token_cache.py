# -*- coding: utf-8 -*-
# Copyright: Contributors to the azure_flex.vmss collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import types

import pytest

from ansible_collections.azure_flex.vmss.plugins.module_utils import _auth
from ansible_collections.azure_flex.vmss.plugins.module_utils._errors import InvalidInputError


class Identity:
    """The one azure.identity name token_cache_options uses, recording its arguments."""

    @staticmethod
    def TokenCachePersistenceOptions(**kwargs):  # pylint: disable=invalid-name
        return types.SimpleNamespace(**kwargs)


@pytest.mark.parametrize("environ, mode", [({}, "memory"), ({"AZURE_FLEX_TOKEN_CACHE": ""}, "memory"),
                                           ({"AZURE_FLEX_TOKEN_CACHE": " Persistent "}, "persistent"),
                                           ({"AZURE_FLEX_TOKEN_CACHE": "encrypted"}, "encrypted")])
def test_token_cache_mode(environ, mode):
    assert _auth.token_cache_mode(environ) == mode


def test_unknown_token_cache_mode_is_an_input_error():
    with pytest.raises(InvalidInputError, match="AZURE_FLEX_TOKEN_CACHE must be one of memory, encrypted, persistent"):
        _auth.token_cache_mode({"AZURE_FLEX_TOKEN_CACHE": "disk"})


def test_default_writes_no_cache():
    assert _auth.token_cache_options(Identity, {}) == {}


@pytest.mark.parametrize("mode, plaintext_allowed", [("encrypted", False), ("persistent", True)])
def test_persistent_modes(mode, plaintext_allowed):
    options = _auth.token_cache_options(Identity, {"AZURE_FLEX_TOKEN_CACHE": mode})["cache_persistence_options"]

    assert options.name == "azure_flex.vmss"
    assert options.allow_unencrypted_storage is plaintext_allowed


def test_real_azure_identity_takes_the_options():
    from azure import identity  # pylint: disable=import-outside-toplevel

    options = _auth.token_cache_options(identity, {"AZURE_FLEX_TOKEN_CACHE": "persistent"})
    credential = identity.ClientSecretCredential("00000000-0000-0000-0000-000000000000", "app", "secret", **options)
    assert credential is not None

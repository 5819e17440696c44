"""Contract of the secret generation the cloud platforms share (``hastack.platforms._secrets``)."""

from __future__ import annotations

import importlib

import pytest

from hastack.platforms import _secrets
from hastack.testing import capture

# By module path: each platform package exports a `secrets` name of its own that hides the submodule.
aws_secrets = importlib.import_module("hastack.platforms.aws.secrets")
k8s_secrets = importlib.import_module("hastack.platforms.kubernetes.secrets")

ZONES = ["us-east-1a", "us-east-1b"]
CONFIG = {
    "aws": {"platform": "aws", "zones": ZONES},
    "kubernetes": {"platform": "kubernetes", "zones": ZONES},
}
# Logical names are state: renaming one would replace the password it holds on the next `pulumi up`.
GENERATED = {
    ("random:index/randomPassword:RandomPassword", "hastack-superuser-password"),
    ("random:index/randomPassword:RandomPassword", "hastack-replication-password"),
    ("random:index/randomPassword:RandomPassword", "hastack-rewind-password"),
    ("random:index/randomPassword:RandomPassword", "hastack-gossip-seed"),
    ("random:index/randomUuid:RandomUuid", "hastack-consul-token"),
}


def test_both_cloud_platforms_generate_secrets_with_one_shared_function():
    assert aws_secrets.secret_values is _secrets.secret_values
    assert k8s_secrets.secret_values is _secrets.secret_values
    assert aws_secrets.SecretValues is k8s_secrets.SecretValues is _secrets.SecretValues


@pytest.mark.parametrize("platform", ["aws", "kubernetes"])
def test_generated_secrets_keep_their_names_parent_and_shape(platform):
    cap = capture(CONFIG[platform], stack="dev")
    randoms = [r for r in cap.resources if r.type.startswith("random:")]
    assert {(r.type, r.name) for r in randoms} == GENERATED
    stack = next(r for r in cap.resources if r.type == f"hastack:{platform}:HaStack")
    assert all(r.parent == stack.urn for r in randoms)
    for r in randoms:
        if r.name.endswith("-password"):
            assert r.inputs == {"length": 32, "special": False}, r.name
    assert next(r for r in randoms if r.name == "hastack-gossip-seed").inputs == {"length": 64, "special": False}


@pytest.mark.parametrize("platform", ["aws", "kubernetes"])
def test_config_passwords_replace_the_generated_ones(platform):
    given = {"superuserPassword": "Su-1a2b3c", "replicationPassword": "Re-4d5e6f", "rewindPassword": "Rw-7a8b9c"}
    config = {**CONFIG[platform], "postgres": {"passwords": {"source": "config", "length": 40}}, **given}
    cap = capture(config, stack="dev")
    names = {r.name for r in cap.resources if r.type.startswith("random:")}
    assert names == {"hastack-gossip-seed", "hastack-consul-token"}

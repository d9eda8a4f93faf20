"""The chart turns authentication on: API keys from a Secret mounted as a directory (so
that key changes reach the pods without a restart), JWT settings, the session-token
secret from a Secret, and the test hook's credential."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart.render import Rendered, find, render, validate_values


def gateway_parts(values: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any], list[Rendered]]:
    objects, _ = render(values)
    (config,) = find(objects, "ConfigMap", "-gateway")
    (deployment,) = find(objects, "Deployment", "-gateway")
    return config.obj["data"], deployment.obj["spec"]["template"]["spec"], objects


def test_auth_is_on_by_default_with_the_charts_own_empty_keys_secret() -> None:
    data, pod, objects = gateway_parts({})
    assert data["AUTH__REQUIRED"] == "true"
    assert data["AUTH__API_KEYS_FILE"] == "/etc/speech-fleet/api-keys/api-keys.json"
    (secret,) = find(objects, "Secret", "-gateway-api-keys")
    assert secret.obj["stringData"] == {"api-keys.json": '{"version": 1, "keys": []}'}
    assert secret.obj["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "api-keys"]
    assert volume["secret"]["secretName"] == secret.name
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "api-keys"]
    # A subPath mount would never see the Secret change.
    assert mount == {
        "name": "api-keys",
        "mountPath": "/etc/speech-fleet/api-keys",
        "readOnly": True,
    }


def test_an_existing_keys_secret_jwt_and_session_token_secret() -> None:
    auth = {
        "apiKeys": {"existingSecret": "speech-keys", "key": "keys.json"},
        "jwt": {
            "jwksUrl": "https://idp.example/jwks",
            "issuer": "https://idp.example",
            "audience": "speech",
        },
        "sessionTokens": {"existingSecret": "speech-token-secret", "ttlSeconds": 120},
    }
    data, pod, objects = gateway_parts(
        {"gateway": {"auth": auth}, "tests": {"credentialSecret": "speech-test"}}
    )
    assert not find(objects, "Secret", "-gateway-api-keys")
    assert data["AUTH__API_KEYS_FILE"] == "/etc/speech-fleet/api-keys/keys.json"
    assert (
        data["AUTH__JWT__JWKS_URL"],
        data["AUTH__JWT__ISSUER"],
        data["AUTH__JWT__AUDIENCE"],
    ) == (
        "https://idp.example/jwks",
        "https://idp.example",
        "speech",
    )
    assert data["AUTH__JWT__ALGORITHMS"] == "RS256,ES256"
    assert data["AUTH__SESSION_TOKEN_TTL_S"] == "120"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "api-keys"]
    assert volume["secret"]["secretName"] == "speech-keys"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["AUTH__SESSION_TOKEN_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "speech-token-secret",
        "key": "session-token-secret",
    }
    (test_pod,) = find(objects, "Pod")
    (test_env,) = test_pod.obj["spec"]["containers"][0]["env"]
    assert test_env["valueFrom"]["secretKeyRef"] == {"name": "speech-test", "key": "SPEECH_TOKEN"}


def test_a_development_fleet_turns_it_off() -> None:
    data, pod, objects = gateway_parts({"gateway": {"auth": {"required": False}}})
    assert data["AUTH__REQUIRED"] == "false"
    assert "AUTH__API_KEYS_FILE" not in data
    assert not [v for v in pod["volumes"] if v["name"] == "api-keys"]
    assert not find(objects, "Secret", "-gateway-api-keys")


def test_a_jwks_url_without_issuer_and_audience_does_not_render() -> None:
    with pytest.raises(Exception, match=r"issuer and gateway\.auth\.jwt\.audience"):
        render({"gateway": {"auth": {"jwt": {"jwksUrl": "https://idp.example/jwks"}}}})


def test_the_schema_refuses_a_symmetric_algorithm() -> None:
    with pytest.raises(helm.HelmValuesError, match="algorithms"):
        validate_values({"gateway": {"auth": {"jwt": {"algorithms": ["HS256"]}}}})


def test_the_gateway_api_route_carries_the_token_endpoint() -> None:
    objects, _ = render({"httpRoute": {"enabled": True, "parentRefs": [{"name": "public"}]}})
    (route,) = find(objects, "HTTPRoute")
    paths = [m["path"]["value"] for rule in route.obj["spec"]["rules"] for m in rule["matches"]]
    assert "/api/v1/tokens" in paths
